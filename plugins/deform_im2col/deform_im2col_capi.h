/* C API of YolactDeformIm2col (shared conventions: common/yd_capi.h).
 * x [B,C,H,W], offset [B,2*dg*kH*kW,Ho,Wo], mask [B,dg*kH*kW,Ho,Wo] -> cols [B, C*kH*kW, Ho*Wo]. */
#ifndef YOLACT_DEPLOY_DEFORM_IM2COL_CAPI_H
#define YOLACT_DEPLOY_DEFORM_IM2COL_CAPI_H

#include "yd_capi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CPU instance (libyolact_plugins_cpu.so), host pointers. */
YD_API int32_t yd_deform_im2col_cpu(int32_t dtype, void const* x, void const* offset, void const* mask, void* cols,
    int64_t batch, int64_t channels, int64_t height, int64_t width, int64_t out_h, int64_t out_w, int32_t kernel_h,
    int32_t kernel_w, int32_t stride_h, int32_t stride_w, int32_t pad_h, int32_t pad_w, int32_t dilation_h,
    int32_t dilation_w, int32_t deform_groups);

/* CUDA instance (libyolact_plugins_cuda.so): device pointers, work queued on stream (a cudaStream_t). */
YD_API int32_t yd_deform_im2col_cuda(int32_t dtype, void const* x, void const* offset, void const* mask, void* cols,
    int64_t batch, int64_t channels, int64_t height, int64_t width, int64_t out_h, int64_t out_w, int32_t kernel_h,
    int32_t kernel_w, int32_t stride_h, int32_t stride_w, int32_t pad_h, int32_t pad_w, int32_t dilation_h,
    int32_t dilation_w, int32_t deform_groups, void* stream);

#ifdef __cplusplus
}
#endif

#endif
