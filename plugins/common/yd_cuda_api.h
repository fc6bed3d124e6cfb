// Entry points of the CUDA instance (compiled by nvcc), called by the TensorRT wrappers (g++).
// Each launches work on the stream and returns without synchronising or allocating.
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

// Workspace bytes fastNms needs for p: the scratch buffers plus CUB's temp storage.
size_t fastNmsWorkspaceBytes(FastNmsParams const& p);

Status fastNms(FastNmsParams const& p, DType dtype, void const* boxes, void const* scores, void* workspace,
    size_t workspaceBytes, int32_t* numDetections, void* outBoxes, void* outScores, int32_t* outClasses,
    int32_t* outIndices, cudaStream_t stream);

} // namespace gpu
} // namespace yd
