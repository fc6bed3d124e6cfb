// CUDA instance of YolactFastNMS: the same core as fast_nms_cpu.cpp, on Thrust's CUDA backend and CUB
// (segmented sort, scan) with all scratch memory in the caller's workspace.
#include "yd_primitives_cuda.cuh" // before the core: the primitives it calls for CudaExec

#include "fast_nms_capi.h"
#include "fast_nms_core.h"
#include "yd_capi_internal.h"
#include "fast_nms_cuda.h"
#include "yd_cuda_errors.h"

namespace yd
{
namespace gpu
{
namespace
{

bool tempBytes(FastNmsParams const& p, size_t& bytes)
{
    int64_t const s = nmsSegmentsPerImage(p);
    int64_t const k = nmsListLength(p);
    size_t sort1 = 0, sort2 = 0, scan = 0;
    bool const ok = segmentedSortTempBytes(p.batch * s * p.numPriors, p.batch * s, sort1)
        && segmentedSortTempBytes(p.batch * s * k, p.batch, sort2) && exclusiveScanTempBytes(p.batch * p.numPriors, scan);
    bytes = ydMax(ydMax(sort1, sort2), scan);
    return ok;
}

} // namespace

Status fastNmsWorkspaceBytes(FastNmsParams const& p, size_t& bytes)
{
    bytes = 0;
    Status const s = checkFastNmsParams(p);
    if (s != kSUCCESS)
    {
        return s;
    }
    size_t temp = 0;
    ClearStaleError const clear; // CUB's size query reports any pending error as its own
    if (!tempBytes(p, temp))
    {
        takeLaunchError();
        return kBACKEND_ERROR;
    }
    bytes = fastNmsCarve(p, temp, nullptr, nullptr);
    return kSUCCESS;
}

Status fastNms(FastNmsParams const& p, DType dtype, void const* boxes, void const* scores, void* workspace,
    size_t workspaceBytes, int32_t* numDetections, void* outBoxes, void* outScores, int32_t* outClasses,
    int32_t* outIndices, cudaStream_t stream)
{
    try
    {
        Status s = checkFastNmsParams(p);
        if (s != kSUCCESS)
        {
            return s;
        }
        ClearStaleError const clear;
        size_t temp = 0;
        if (!tempBytes(p, temp))
        {
            takeLaunchError();
            return kBACKEND_ERROR;
        }
        // workspaceBytes is what the caller really has (the plugin: getWorkspaceSize at the profile
        // maximum); this call's shapes must fit in it.
        FastNmsWorkspace ws{};
        if (fastNmsCarve(p, temp, workspace, &ws) > workspaceBytes)
        {
            return kWORKSPACE_TOO_SMALL;
        }
        CudaExec const exec{stream};
        if (dtype == DType::kFLOAT32)
        {
            FastNmsOutputs<F32> const out{numDetections, static_cast<float*>(outBoxes), static_cast<float*>(outScores),
                outClasses, outIndices};
            s = yd::fastNms<CudaExec, F32>(
                exec, p, static_cast<float const*>(boxes), static_cast<float const*>(scores), ws, out);
        }
        else if (dtype == DType::kFLOAT16)
        {
            FastNmsOutputs<F16> const out{numDetections, static_cast<uint16_t*>(outBoxes),
                static_cast<uint16_t*>(outScores), outClasses, outIndices};
            s = yd::fastNms<CudaExec, F16>(
                exec, p, static_cast<uint16_t const*>(boxes), static_cast<uint16_t const*>(scores), ws, out);
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

extern "C" int64_t yd_fast_nms_cuda_workspace_bytes(
    int64_t batch, int64_t num_priors, int64_t num_classes, int32_t top_k, int32_t cross_class)
{
    yd::FastNmsParams const p{batch, num_priors, num_classes, 0.f, 0.f, top_k, 1, cross_class != 0 ? 1 : 0, 0};
    size_t bytes = 0;
    yd::Status const s = yd::gpu::fastNmsWorkspaceBytes(p, bytes);
    if (s != yd::kSUCCESS)
    {
        yd::fail(s, s == yd::kBAD_ARGUMENT ? "YolactFastNMS: invalid sizes" : "YolactFastNMS: CUB's temp-storage query failed");
        return -1;
    }
    yd::succeed();
    return static_cast<int64_t>(bytes);
}

extern "C" int32_t yd_fast_nms_cuda(int32_t dtype, void const* boxes, void const* scores, int64_t batch,
    int64_t num_priors, int64_t num_classes, float conf_thresh, float iou_threshold, int32_t top_k,
    int32_t max_detections, int32_t cross_class, int32_t second_threshold, void* workspace, int64_t workspace_bytes,
    int32_t* num_detections, void* out_boxes, void* out_scores, int32_t* out_classes, int32_t* out_indices,
    void* stream)
{
    yd::FastNmsParams const p{batch, num_priors, num_classes, conf_thresh, iou_threshold, top_k, max_detections,
        cross_class != 0 ? 1 : 0, second_threshold != 0 ? 1 : 0};
    if (yd::checkFastNmsParams(p) != yd::kSUCCESS || workspace_bytes < 0)
    {
        return yd::fail(yd::kBAD_ARGUMENT, "YolactFastNMS: invalid shape, attribute or workspace size");
    }
    if (dtype != 0 && dtype != 1)
    {
        return yd::fail(yd::kBAD_ARGUMENT, "YolactFastNMS: dtype must be 0 (float32) or 1 (float16)");
    }
    yd::Status const s = yd::gpu::fastNms(p, static_cast<yd::DType>(dtype), boxes, scores, workspace,
        static_cast<size_t>(workspace_bytes), num_detections, out_boxes, out_scores, out_classes, out_indices,
        static_cast<cudaStream_t>(stream));
    switch (s)
    {
    case yd::kSUCCESS: return yd::succeed();
    case yd::kWORKSPACE_TOO_SMALL: return yd::fail(s, "YolactFastNMS: workspace too small for these shapes");
    case yd::kBAD_ARGUMENT: return yd::fail(s, "YolactFastNMS: invalid argument");
    default: return yd::fail(s, "YolactFastNMS: a CUDA launch or CUB call failed");
    }
}
