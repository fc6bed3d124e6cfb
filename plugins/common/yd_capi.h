/* C API of the CPU instance of the plugins (libyolact_plugins_cpu.so).
 *
 * Every function runs the same core code as the CUDA instance inside libyolact_plugins.so, on host
 * memory, synchronously. Tensors are dense, row-major (C order). dtype: 0 = float32, 1 = float16
 * (IEEE binary16 bits). Functions return 0 on success, otherwise a yd::Status code, and
 * yd_last_error() then describes the problem (thread-local, valid until the next call).
 * Python binds this with ctypes: yolact_deploy/plugins.py.
 */
#ifndef YOLACT_DEPLOY_YD_CAPI_H
#define YOLACT_DEPLOY_YD_CAPI_H

#include <stdint.h>

#if defined(__GNUC__)
#define YD_API __attribute__((visibility("default")))
#else
#define YD_API
#endif

#define YD_CAPI_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

YD_API int32_t yd_capi_version(void);
YD_API char const* yd_last_error(void);

/* YolactDeformIm2col: x [B,C,H,W], offset [B,2*dg*kH*kW,Ho,Wo], mask [B,dg*kH*kW,Ho,Wo]
 * -> cols [B, C*kH*kW, Ho*Wo]. */
YD_API int32_t yd_deform_im2col_cpu(int32_t dtype, void const* x, void const* offset, void const* mask, void* cols,
    int64_t batch, int64_t channels, int64_t height, int64_t width, int64_t out_h, int64_t out_w, int32_t kernel_h,
    int32_t kernel_w, int32_t stride_h, int32_t stride_w, int32_t pad_h, int32_t pad_w, int32_t dilation_h,
    int32_t dilation_w, int32_t deform_groups);

/* YolactFastNMS: boxes [B,N,4], scores [B,N,C] (same dtype) -> num_detections int32 [B,1],
 * boxes [B,K,4] and scores [B,K] (input dtype), classes int32 [B,K], indices int32 [B,K]. */
YD_API int32_t yd_fast_nms_cpu(int32_t dtype, void const* boxes, void const* scores, int64_t batch,
    int64_t num_priors, int64_t num_classes, float conf_thresh, float iou_threshold, int32_t top_k,
    int32_t max_detections, int32_t cross_class, int32_t second_threshold, int32_t* num_detections,
    void* out_boxes, void* out_scores, int32_t* out_classes, int32_t* out_indices);

/* Scratch bytes YolactFastNMS needs besides the sort/scan temp storage (the GPU workspace adds CUB's). */
YD_API int64_t yd_fast_nms_scratch_bytes(int64_t batch, int64_t num_priors, int64_t num_classes, int32_t top_k,
    int32_t cross_class);

/* binary16 <-> binary32 conversions of the kernels' CPU path, for tests. */
YD_API void yd_half_to_float(uint16_t const* in, float* out, int64_t n);
YD_API void yd_float_to_half(float const* in, uint16_t* out, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
