// CUDA instance of YolactDeformIm2col: the same core as deform_im2col_cpu.cpp, on Thrust's CUDA backend.
#include "deform_im2col_core.h"
#include "yd_cuda_api.h"

namespace yd
{
namespace gpu
{

Status deformIm2col(DeformIm2colParams const& p, DType dtype, void const* x, void const* offset, void const* mask,
    void* cols, cudaStream_t stream)
{
    try
    {
        Status s = kBAD_ARGUMENT;
        CudaExec const exec{stream};
        if (dtype == DType::kFLOAT32)
        {
            s = yd::deformIm2col<CudaExec, F32>(exec, p, static_cast<float const*>(x),
                static_cast<float const*>(offset), static_cast<float const*>(mask), static_cast<float*>(cols));
        }
        else if (dtype == DType::kFLOAT16)
        {
            s = yd::deformIm2col<CudaExec, F16>(exec, p, static_cast<uint16_t const*>(x),
                static_cast<uint16_t const*>(offset), static_cast<uint16_t const*>(mask), static_cast<uint16_t*>(cols));
        }
        if (s == kSUCCESS && cudaPeekAtLastError() != cudaSuccess)
        {
            s = kBACKEND_ERROR;
        }
        return s;
    }
    catch (...)
    {
        return kBACKEND_ERROR; // thrust reports launch failures as exceptions
    }
}

} // namespace gpu
} // namespace yd
