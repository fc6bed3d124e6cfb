// Entry points of the CUDA instance (compiled by nvcc), called by the TensorRT wrappers (g++).
// Each launches work on the stream and returns without synchronising, allocating or copying to the
// host (tests/plugins/host_path checks this for every shipped profile and target GPU).
#pragma once

#include "deform_im2col_params.h"
#include "fast_nms_params.h"

#include <cuda_runtime_api.h>

namespace yd
{
namespace gpu
{

Status deformIm2col(DeformIm2colParams const& p, DType dtype, void const* x, void const* offset, void const* mask,
    void* cols, cudaStream_t stream);

// Workspace bytes fastNms needs for p on the current device: the scratch buffers plus CUB's temp
// storage. kBACKEND_ERROR when CUB's size query fails (never a silent 0).
Status fastNmsWorkspaceBytes(FastNmsParams const& p, size_t& bytes);

Status fastNms(FastNmsParams const& p, DType dtype, void const* boxes, void const* scores, void* workspace,
    size_t workspaceBytes, int32_t* numDetections, void* outBoxes, void* outScores, int32_t* outClasses,
    int32_t* outIndices, cudaStream_t stream);

} // namespace gpu
} // namespace yd
