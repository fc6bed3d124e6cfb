// CPU instance of YolactFastNMS: the core of fast_nms_core.h on Thrust's CPP backend.
// Each scratch buffer is its own allocation here, so AddressSanitizer sees an overrun of any of them.
#include "yd_primitives_cpu.h" // before the core: the primitives it calls for CpuExec

#include "fast_nms_core.h"
#include "fast_nms_capi.h"
#include "yd_capi_internal.h"

#include <exception>
#include <vector>

namespace
{

template <class St>
yd::Status run(yd::FastNmsParams const& p, void const* boxes, void const* scores, int32_t* numDet, void* outBoxes,
    void* outScores, int32_t* classes, int32_t* indices)
{
    using T = typename St::type;
    size_t bytes[yd::kNMS_NUM_BUFFERS];
    yd::fastNmsBufferBytes(p, bytes);
    std::vector<std::vector<int32_t>> storage(yd::kNMS_NUM_BUFFERS);
    yd::FastNmsWorkspace ws{};
    for (int32_t i = 0; i < yd::kNMS_NUM_BUFFERS; ++i)
    {
        storage[static_cast<size_t>(i)].resize(bytes[i] / 4);
        ws.buffer[i] = storage[static_cast<size_t>(i)].data();
    }
    ws.temp = nullptr;
    ws.tempBytes = 0;
    yd::FastNmsOutputs<St> const out{
        numDet, static_cast<T*>(outBoxes), static_cast<T*>(outScores), classes, indices};
    return yd::fastNms<yd::CpuExec, St>(
        yd::CpuExec{}, p, static_cast<T const*>(boxes), static_cast<T const*>(scores), ws, out);
}

} // namespace

extern "C" int32_t yd_fast_nms_cpu(int32_t dtype, void const* boxes, void const* scores, int64_t batch,
    int64_t num_priors, int64_t num_classes, float conf_thresh, float iou_threshold, int32_t top_k,
    int32_t max_detections, int32_t cross_class, int32_t second_threshold, int32_t* num_detections,
    void* out_boxes, void* out_scores, int32_t* out_classes, int32_t* out_indices)
{
    yd::FastNmsParams const p{batch, num_priors, num_classes, conf_thresh, iou_threshold, top_k, max_detections,
        cross_class != 0 ? 1 : 0, second_threshold != 0 ? 1 : 0};
    if (yd::checkFastNmsParams(p) != yd::kSUCCESS)
    {
        return yd::fail(yd::kBAD_ARGUMENT,
            "YolactFastNMS: invalid shape or attribute (need N, C, top_k, max_detections >= 1, finite "
            "thresholds, B*C*N below 2^31)");
    }
    if (batch > 0
        && (boxes == nullptr || scores == nullptr || num_detections == nullptr || out_boxes == nullptr
            || out_scores == nullptr || out_classes == nullptr || out_indices == nullptr))
    {
        return yd::fail(yd::kBAD_ARGUMENT, "YolactFastNMS: null tensor pointer");
    }
    try
    {
        yd::Status s = yd::kBAD_ARGUMENT;
        if (dtype == static_cast<int32_t>(yd::DType::kFLOAT32))
        {
            s = run<yd::F32>(p, boxes, scores, num_detections, out_boxes, out_scores, out_classes, out_indices);
        }
        else if (dtype == static_cast<int32_t>(yd::DType::kFLOAT16))
        {
            s = run<yd::F16>(p, boxes, scores, num_detections, out_boxes, out_scores, out_classes, out_indices);
        }
        else
        {
            return yd::fail(yd::kBAD_ARGUMENT, "YolactFastNMS: dtype must be 0 (float32) or 1 (float16)");
        }
        return s == yd::kSUCCESS ? yd::succeed() : yd::fail(s, "YolactFastNMS: backend failure");
    }
    catch (std::exception const& e)
    {
        return yd::fail(yd::kBACKEND_ERROR, e.what());
    }
}

extern "C" int64_t yd_fast_nms_scratch_bytes(
    int64_t batch, int64_t num_priors, int64_t num_classes, int32_t top_k, int32_t cross_class)
{
    yd::FastNmsParams const p{batch, num_priors, num_classes, 0.f, 0.f, top_k, 1, cross_class != 0 ? 1 : 0, 0};
    if (yd::checkFastNmsParams(p) != yd::kSUCCESS)
    {
        return -1;
    }
    return static_cast<int64_t>(yd::fastNmsCarve(p, 0, nullptr, nullptr));
}
