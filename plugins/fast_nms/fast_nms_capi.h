/* C API of YolactFastNMS (shared conventions: common/yd_capi.h).
 * boxes [B,N,4], scores [B,N,C] (same dtype) -> num_detections int32 [B,1], boxes [B,K,4] and
 * scores [B,K] (input dtype), classes int32 [B,K], indices int32 [B,K]. */
#ifndef YOLACT_DEPLOY_FAST_NMS_CAPI_H
#define YOLACT_DEPLOY_FAST_NMS_CAPI_H

#include "yd_capi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CPU instance (libyolact_plugins_cpu.so), host pointers. */
YD_API int32_t yd_fast_nms_cpu(int32_t dtype, void const* boxes, void const* scores, int64_t batch,
    int64_t num_priors, int64_t num_classes, float conf_thresh, float iou_threshold, int32_t top_k,
    int32_t max_detections, int32_t cross_class, int32_t second_threshold, int32_t* num_detections,
    void* out_boxes, void* out_scores, int32_t* out_classes, int32_t* out_indices);

/* Scratch bytes YolactFastNMS needs besides the sort/scan temp storage (the GPU workspace adds CUB's). */
YD_API int64_t yd_fast_nms_scratch_bytes(int64_t batch, int64_t num_priors, int64_t num_classes, int32_t top_k,
    int32_t cross_class);

/* CUDA instance (libyolact_plugins_cuda.so). Workspace bytes for these sizes on the current device
 * (what the TensorRT plugin's getWorkspaceSize reports for the profile maximum); -1 on invalid sizes
 * or when CUB's size query fails (yd_last_error says which). */
YD_API int64_t yd_fast_nms_cuda_workspace_bytes(int64_t batch, int64_t num_priors, int64_t num_classes,
    int32_t top_k, int32_t cross_class);

/* Device pointers; workspace holds workspace_bytes bytes (kWORKSPACE_TOO_SMALL = 3 if they do not
 * suffice for this call's shapes); work queued on stream (a cudaStream_t). */
YD_API int32_t yd_fast_nms_cuda(int32_t dtype, void const* boxes, void const* scores, int64_t batch,
    int64_t num_priors, int64_t num_classes, float conf_thresh, float iou_threshold, int32_t top_k,
    int32_t max_detections, int32_t cross_class, int32_t second_threshold, void* workspace,
    int64_t workspace_bytes, int32_t* num_detections, void* out_boxes, void* out_scores, int32_t* out_classes,
    int32_t* out_indices, void* stream);

#ifdef __cplusplus
}
#endif

#endif
