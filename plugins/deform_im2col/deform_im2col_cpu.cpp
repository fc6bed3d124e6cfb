// CPU instance of YolactDeformIm2col: the core of deform_im2col_core.h on Thrust's CPP backend.
#include "deform_im2col_core.h"
#include "deform_im2col_capi.h"
#include "yd_capi_internal.h"

#include <exception>

extern "C" int32_t yd_deform_im2col_cpu(int32_t dtype, void const* x, void const* offset, void const* mask,
    void* cols, int64_t batch, int64_t channels, int64_t height, int64_t width, int64_t out_h, int64_t out_w,
    int32_t kernel_h, int32_t kernel_w, int32_t stride_h, int32_t stride_w, int32_t pad_h, int32_t pad_w,
    int32_t dilation_h, int32_t dilation_w, int32_t deform_groups)
{
    yd::DeformIm2colParams const p{batch, channels, height, width, out_h, out_w, kernel_h, kernel_w, stride_h,
        stride_w, pad_h, pad_w, dilation_h, dilation_w, deform_groups};
    if (yd::checkDeformIm2colParams(p) != yd::kSUCCESS)
    {
        return yd::fail(yd::kBAD_ARGUMENT,
            "YolactDeformIm2col: invalid shape or attribute (need positive sizes, kernel, stride, dilation; "
            "pad >= 0; channels divisible by deformable groups; coordinates below 2^24)");
    }
    if (batch > 0 && (x == nullptr || offset == nullptr || mask == nullptr || cols == nullptr))
    {
        return yd::fail(yd::kBAD_ARGUMENT, "YolactDeformIm2col: null tensor pointer");
    }
    try
    {
        yd::Status s = yd::kBAD_ARGUMENT;
        if (dtype == static_cast<int32_t>(yd::DType::kFLOAT32))
        {
            s = yd::deformIm2col<yd::CpuExec, yd::F32>(yd::CpuExec{}, p, static_cast<float const*>(x),
                static_cast<float const*>(offset), static_cast<float const*>(mask), static_cast<float*>(cols));
        }
        else if (dtype == static_cast<int32_t>(yd::DType::kFLOAT16))
        {
            s = yd::deformIm2col<yd::CpuExec, yd::F16>(yd::CpuExec{}, p, static_cast<uint16_t const*>(x),
                static_cast<uint16_t const*>(offset), static_cast<uint16_t const*>(mask), static_cast<uint16_t*>(cols));
        }
        else
        {
            return yd::fail(yd::kBAD_ARGUMENT, "YolactDeformIm2col: dtype must be 0 (float32) or 1 (float16)");
        }
        return s == yd::kSUCCESS ? yd::succeed() : yd::fail(s, "YolactDeformIm2col: backend failure");
    }
    catch (std::exception const& e)
    {
        return yd::fail(yd::kBACKEND_ERROR, e.what());
    }
}
