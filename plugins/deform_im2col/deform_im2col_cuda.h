// Entry point of the CUDA instance (nvcc), called by the TensorRT wrapper (g++). It launches work on
// the stream and returns without synchronising, allocating or copying to the host
// (tests/plugins/host_path checks this for every shipped profile and target GPU).
#pragma once

#include "deform_im2col_params.h"

#include <cuda_runtime_api.h>

namespace yd
{
namespace gpu
{

Status deformIm2col(DeformIm2colParams const& p, DType dtype, void const* x, void const* offset, void const* mask,
    void* cols, cudaStream_t stream);

} // namespace gpu
} // namespace yd
