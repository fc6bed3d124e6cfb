// Entry points of the CUDA instance (nvcc), called by the TensorRT wrapper (g++). fastNms launches
// work on the stream and returns without synchronising, allocating or copying to the host
// (tests/plugins/host_path checks this for every shipped profile and target GPU).
#pragma once

#include "fast_nms_params.h"

#include <cuda_runtime_api.h>

namespace yd
{
namespace gpu
{

// Workspace bytes fastNms needs for p on the current device: the scratch buffers plus CUB's temp
// storage. kBACKEND_ERROR when CUB's size query fails (never a silent 0).
Status fastNmsWorkspaceBytes(FastNmsParams const& p, size_t& bytes);

// workspaceBytes: what the caller really has; kWORKSPACE_TOO_SMALL when p's shapes need more.
Status fastNms(FastNmsParams const& p, DType dtype, void const* boxes, void const* scores, void* workspace,
    size_t workspaceBytes, int32_t* numDetections, void* outBoxes, void* outScores, int32_t* outClasses,
    int32_t* outIndices, cudaStream_t stream);

} // namespace gpu
} // namespace yd
