// YolactFastNMS core: batched Fast NMS with fixed-size outputs, backend-agnostic.
//
// Semantics = yolact_deploy.ops.nms.fast_nms (read its docstring), computed in FP32:
//  1. prior n of image b is a candidate when max_c score[b,n,c] > conf_thresh (a NaN score anywhere in
//     the row makes it a non-candidate, as torch.max propagates NaN);
//  2. segments: class-wise one per (b, class), cross-class one per b keyed by the best score (class =
//     first arg-max). Candidates are sorted by score descending, equal scores by lower prior index,
//     and the first k = min(top_k, N) form the segment's list;
//  3. list entry j is kept when its score >= 0 (and > conf_thresh with second_threshold) and no
//     higher-ranked entry i < j has IoU(i, j) > iou_threshold or a NaN IoU; suppressed entries still
//     suppress;
//  4. kept entries of all segments of an image, in class-major list order, are sorted by score
//     descending (stable) and the first max_detections fill the outputs; the rest are padding
//     (score 0, zero box, class -1, index -1).
// Only the candidates are sorted (compacted with a scan), so the cost follows the candidate count.
#pragma once

#include "fast_nms_params.h"
#include "yd_exec.h"

#include <cmath>

namespace yd
{

template <class St>
struct FastNmsOutputs
{
    int32_t* numDetections;       // [B, 1]
    typename St::type* boxes;     // [B, K, 4]
    typename St::type* scores;    // [B, K]
    int32_t* classes;             // [B, K]
    int32_t* indices;             // [B, K]
};

namespace nms_detail
{

YD_HD inline float canonicalZero(float v)
{
    return v == 0.f ? 0.f : v; // -0 and +0 must tie (they compare equal in the reference's sort)
}

// IoU exactly as ops.boxes.jaccard evaluates it (no fused multiply-add anywhere in this code).
template <class St>
YD_HD inline float iou(typename St::type const* a, typename St::type const* b)
{
    float const ax1 = St::load(a[0]), ay1 = St::load(a[1]), ax2 = St::load(a[2]), ay2 = St::load(a[3]);
    float const bx1 = St::load(b[0]), by1 = St::load(b[1]), bx2 = St::load(b[2]), by2 = St::load(b[3]);
    float iw = ydMin(ax2, bx2) - ydMax(ax1, bx1);
    float ih = ydMin(ay2, by2) - ydMax(ay1, by1);
    iw = iw < 0.f ? 0.f : iw; // torch.clamp(min=0) keeps NaN
    ih = ih < 0.f ? 0.f : ih;
    float const inter = iw * ih;
    float const areaA = (ax2 - ax1) * (ay2 - ay1);
    float const areaB = (bx2 - bx1) * (by2 - by1);
    return inter / ((areaA + areaB) - inter);
}

template <class St>
struct CandidateFunctor
{
    FastNmsParams p;
    typename St::type const* scores;
    int32_t* flag;
    float* best;
    int32_t* bestClass;

    YD_HD void operator()(int64_t i) const
    {
        typename St::type const* row = scores + i * p.numClasses;
        float top = St::load(row[0]);
        int32_t arg = 0;
        bool nan = !(top == top);
        for (int64_t c = 1; c < p.numClasses; ++c)
        {
            float const v = St::load(row[c]);
            nan = nan || !(v == v);
            if (v > top)
            {
                top = v;
                arg = static_cast<int32_t>(c);
            }
        }
        flag[i] = (!nan && top > p.confThresh) ? 1 : 0;
        best[i] = top;
        bestClass[i] = arg;
    }
};

struct CountFunctor
{
    int64_t numPriors;
    int32_t const* flag;
    int32_t const* pos;
    int32_t* count;

    YD_HD void operator()(int64_t b) const
    {
        int64_t const first = b * numPriors;
        int64_t const last = first + numPriors - 1;
        count[b] = pos[last] + flag[last] - pos[first];
    }
};

struct CompactFunctor
{
    int64_t numPriors;
    int32_t const* flag;
    int32_t const* pos;
    int32_t* cand;

    YD_HD void operator()(int64_t i) const
    {
        if (flag[i])
        {
            int64_t const b = i / numPriors;
            cand[b * numPriors + (pos[i] - pos[b * numPriors])] = static_cast<int32_t>(i - b * numPriors);
        }
    }
};

struct SegmentFunctor
{
    int64_t segmentsPerImage;
    int64_t numPriors;
    int64_t listLength;
    int32_t const* count;
    int32_t* begin1;
    int32_t* end1;
    int32_t* begin2;
    int32_t* end2;

    YD_HD void operator()(int64_t seg) const
    {
        int64_t const b = seg / segmentsPerImage;
        begin1[seg] = static_cast<int32_t>(seg * numPriors);
        end1[seg] = static_cast<int32_t>(seg * numPriors + count[b]);
        if (seg % segmentsPerImage == 0)
        {
            begin2[b] = static_cast<int32_t>(b * segmentsPerImage * listLength);
            end2[b] = static_cast<int32_t>((b + 1) * segmentsPerImage * listLength);
        }
    }
};

template <class St>
struct KeyFunctor
{
    FastNmsParams p;
    int64_t segmentsPerImage;
    typename St::type const* scores;
    int32_t const* count;
    int32_t const* cand;
    float const* best;
    float* keys;
    int32_t* vals;

    YD_HD void operator()(int64_t e) const
    {
        int64_t const i = e % p.numPriors;
        int64_t const seg = e / p.numPriors;
        int64_t const b = seg / segmentsPerImage;
        if (i >= count[b])
        {
            return;
        }
        int32_t const n = cand[b * p.numPriors + i];
        float const score = p.crossClass ? best[b * p.numPriors + n]
                                         : St::load(scores[(b * p.numPriors + n) * p.numClasses + seg % segmentsPerImage]);
        keys[e] = canonicalZero(score);
        vals[e] = n;
    }
};

template <class St>
struct SuppressFunctor
{
    FastNmsParams p;
    int64_t segmentsPerImage;
    int64_t listLength;
    typename St::type const* boxes;
    int32_t const* count;
    float const* sortedKeys;
    int32_t const* sortedVals;
    float* keys2;
    int32_t* vals2;

    // e = (b * S + s) * k + j: entry j of segment s's list, also its class-major list position.
    YD_HD void operator()(int64_t e) const
    {
        int64_t const j = e % listLength;
        int64_t const seg = e / listLength;
        int64_t const b = seg / segmentsPerImage;
        int64_t const length = ydMin<int64_t>(listLength, count[b]);
        float key = -INFINITY;
        if (j < length)
        {
            int64_t const base = seg * p.numPriors;
            float const score = sortedKeys[base + j];
            bool keep = score >= 0.f && (!p.secondThreshold || score > p.confThresh);
            if (keep)
            {
                typename St::type const* boxJ = boxes + (b * p.numPriors + sortedVals[base + j]) * 4;
                for (int64_t i = 0; i < j; ++i)
                {
                    float const v = iou<St>(boxes + (b * p.numPriors + sortedVals[base + i]) * 4, boxJ);
                    if (!(v <= p.iouThreshold)) // > threshold, or NaN (the reference's max keeps NaN)
                    {
                        keep = false;
                        break;
                    }
                }
            }
            if (keep)
            {
                key = score;
            }
        }
        keys2[e] = key;
        vals2[e] = static_cast<int32_t>(e - b * segmentsPerImage * listLength);
    }
};

template <class St>
struct OutputFunctor
{
    FastNmsParams p;
    int64_t segmentsPerImage;
    int64_t listLength;
    typename St::type const* boxes;
    float const* keys2;
    int32_t const* vals2;
    int32_t const* sortedVals;
    int32_t const* bestClass;
    FastNmsOutputs<St> out;

    YD_HD void operator()(int64_t e) const
    {
        int64_t const slot = e % p.maxDetections;
        int64_t const b = e / p.maxDetections;
        int64_t const total = segmentsPerImage * listLength;
        bool valid = false;
        float score = 0.f;
        int32_t cls = -1;
        int32_t prior = -1;
        if (slot < total)
        {
            int64_t const at = b * total + slot;
            score = keys2[at];
            valid = score > -INFINITY;
            if (valid)
            {
                int64_t const pos = vals2[at]; // s * k + j
                int64_t const s = pos / listLength;
                int64_t const j = pos % listLength;
                prior = sortedVals[(b * segmentsPerImage + s) * p.numPriors + j];
                cls = p.crossClass ? bestClass[b * p.numPriors + prior] : static_cast<int32_t>(s);
            }
        }
        if (!valid)
        {
            score = 0.f;
        }
        out.scores[e] = St::store(score);
        out.classes[e] = cls;
        out.indices[e] = prior;
        for (int32_t c = 0; c < 4; ++c)
        {
            out.boxes[e * 4 + c] = valid ? boxes[(b * p.numPriors + prior) * 4 + c] : St::store(0.f);
        }
    }
};

struct NumDetectionsFunctor
{
    int64_t total; // S * k
    int32_t maxDetections;
    float const* keys2;
    int32_t* numDetections;

    YD_HD void operator()(int64_t b) const
    {
        int64_t const slots = ydMin<int64_t>(total, maxDetections);
        int32_t n = 0;
        while (n < slots && keys2[b * total + n] > -INFINITY)
        {
            ++n;
        }
        numDetections[b] = n;
    }
};

} // namespace nms_detail

template <class Exec, class St>
Status fastNms(Exec exec, FastNmsParams const& p, typename St::type const* boxes, typename St::type const* scores,
    FastNmsWorkspace const& ws, FastNmsOutputs<St> const& out)
{
    using namespace nms_detail;
    Status s = checkFastNmsParams(p);
    if (s != kSUCCESS || p.batch == 0)
    {
        return s;
    }
    int64_t const S = nmsSegmentsPerImage(p);
    int64_t const k = nmsListLength(p);
    int64_t const B = p.batch;
    int64_t const N = p.numPriors;
    auto i32 = [&ws](NmsBuffer i) { return static_cast<int32_t*>(ws.buffer[i]); };
    auto f32 = [&ws](NmsBuffer i) { return static_cast<float*>(ws.buffer[i]); };

    forEach(exec, B * N, CandidateFunctor<St>{p, scores, i32(kNMS_FLAG), f32(kNMS_BEST), i32(kNMS_BEST_CLASS)});
    s = exclusiveScan(exec, i32(kNMS_FLAG), i32(kNMS_POS), B * N, ws.temp, ws.tempBytes);
    if (s != kSUCCESS)
    {
        return s;
    }
    forEach(exec, B, CountFunctor{N, i32(kNMS_FLAG), i32(kNMS_POS), i32(kNMS_COUNT)});
    forEach(exec, B * N, CompactFunctor{N, i32(kNMS_FLAG), i32(kNMS_POS), i32(kNMS_CAND)});
    forEach(exec, B * S,
        SegmentFunctor{S, N, k, i32(kNMS_COUNT), i32(kNMS_SEG1_BEGIN), i32(kNMS_SEG1_END), i32(kNMS_SEG2_BEGIN),
            i32(kNMS_SEG2_END)});
    forEach(exec, B * S * N,
        KeyFunctor<St>{p, S, scores, i32(kNMS_COUNT), i32(kNMS_CAND), f32(kNMS_BEST), f32(kNMS_KEYS1_IN),
            i32(kNMS_VALS1_IN)});
    SortBuffers sort1{{f32(kNMS_KEYS1_IN), f32(kNMS_KEYS1_OUT)}, {i32(kNMS_VALS1_IN), i32(kNMS_VALS1_OUT)}, 0};
    s = segmentedStableSortDesc(
        exec, sort1, B * S * N, B * S, i32(kNMS_SEG1_BEGIN), i32(kNMS_SEG1_END), ws.temp, ws.tempBytes);
    if (s != kSUCCESS)
    {
        return s;
    }
    float const* sortedKeys = sort1.keys[sort1.current];
    int32_t const* sortedVals = sort1.vals[sort1.current];
    forEach(exec, B * S * k,
        SuppressFunctor<St>{p, S, k, boxes, i32(kNMS_COUNT), sortedKeys, sortedVals, f32(kNMS_KEYS2_IN),
            i32(kNMS_VALS2_IN)});
    SortBuffers sort2{{f32(kNMS_KEYS2_IN), f32(kNMS_KEYS2_OUT)}, {i32(kNMS_VALS2_IN), i32(kNMS_VALS2_OUT)}, 0};
    s = segmentedStableSortDesc(
        exec, sort2, B * S * k, B, i32(kNMS_SEG2_BEGIN), i32(kNMS_SEG2_END), ws.temp, ws.tempBytes);
    if (s != kSUCCESS)
    {
        return s;
    }
    forEach(exec, B * p.maxDetections,
        OutputFunctor<St>{p, S, k, boxes, sort2.keys[sort2.current], sort2.vals[sort2.current], sortedVals,
            i32(kNMS_BEST_CLASS), out});
    forEach(exec, B, NumDetectionsFunctor{S * k, p.maxDetections, sort2.keys[sort2.current], out.numDetections});
    return kSUCCESS;
}

} // namespace yd
