// CUDA instance of YolactDeformIm2col: the same core as deform_im2col_cpu.cpp, on Thrust's CUDA backend.
#include "deform_im2col_capi.h"
#include "deform_im2col_core.h"
#include "yd_capi_internal.h"
#include "deform_im2col_cuda.h"
#include "yd_cuda_errors.h"

namespace yd
{
namespace gpu
{

Status deformIm2col(DeformIm2colParams const& p, DType dtype, void const* x, void const* offset, void const* mask,
    void* cols, cudaStream_t stream)
{
    try
    {
        Status s = checkDeformIm2colParams(p);
        if (s != kSUCCESS)
        {
            return s;
        }
        ClearStaleError const clear;
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
        else
        {
            return kBAD_ARGUMENT;
        }
        return takeLaunchError() ? kBACKEND_ERROR : s;
    }
    catch (...)
    {
        takeLaunchError();
        return kBACKEND_ERROR; // Thrust reports launch failures as exceptions
    }
}

} // namespace gpu
} // namespace yd

extern "C" int32_t yd_deform_im2col_cuda(int32_t dtype, void const* x, void const* offset, void const* mask,
    void* cols, int64_t batch, int64_t channels, int64_t height, int64_t width, int64_t out_h, int64_t out_w,
    int32_t kernel_h, int32_t kernel_w, int32_t stride_h, int32_t stride_w, int32_t pad_h, int32_t pad_w,
    int32_t dilation_h, int32_t dilation_w, int32_t deform_groups, void* stream)
{
    yd::DeformIm2colParams const p{batch, channels, height, width, out_h, out_w, kernel_h, kernel_w, stride_h,
        stride_w, pad_h, pad_w, dilation_h, dilation_w, deform_groups};
    if (yd::checkDeformIm2colParams(p) != yd::kSUCCESS || (dtype != 0 && dtype != 1))
    {
        return yd::fail(yd::kBAD_ARGUMENT, "YolactDeformIm2col: invalid shape, attribute or dtype");
    }
    yd::Status const s = yd::gpu::deformIm2col(
        p, static_cast<yd::DType>(dtype), x, offset, mask, cols, static_cast<cudaStream_t>(stream));
    return s == yd::kSUCCESS ? yd::succeed() : yd::fail(s, "YolactDeformIm2col: a CUDA launch failed");
}
