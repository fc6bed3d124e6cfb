// YolactDeformIm2col core: modulated deformable sampling (DCNv2 im2col), backend-agnostic.
//
// Semantics = yolact_deploy.ops.dcn.deformable_im2col, operation for operation in FP32:
//   x [B, C, H, W], offset [B, 2*dg*kH*kW, Ho, Wo], mask [B, dg*kH*kW, Ho, Wo]
//   -> cols [B, C*kH*kW, Ho*Wo], row c*kH*kW + t = channel c sampled at tap t, times the mask.
// Offsets of group g, tap t = i*kW + j: channel g*2*kH*kW + 2t is dy (rows), + 1 is dx (columns).
#pragma once

#include "deform_im2col_params.h"
#include "yd_exec.h"

#include <cmath>

namespace yd
{

template <class St>
struct DeformIm2colFunctor
{
    using T = typename St::type;
    DeformIm2colParams p;
    T const* x;
    T const* offset;
    T const* mask;
    T* cols;

    // Work item = (b, channel chunk, tap, output position); positions vary fastest so that
    // neighbouring items write neighbouring columns.
    YD_HD void operator()(int64_t item) const
    {
        int64_t const taps = int64_t{p.kernelH} * p.kernelW;
        int64_t const area = p.outH * p.outW;
        int64_t const chunks = (p.channels + kIm2colChannelsPerItem - 1) / kIm2colChannelsPerItem;
        int64_t const pos = item % area;
        int64_t rest = item / area;
        int64_t const t = rest % taps;
        rest /= taps;
        int64_t const chunk = rest % chunks;
        int64_t const b = rest / chunks;

        int64_t const ho = pos / p.outW;
        int64_t const wo = pos % p.outW;
        int64_t const ki = t / p.kernelW;
        int64_t const kj = t % p.kernelW;
        int64_t const channelsPerGroup = p.channels / p.deformGroups;
        int64_t const hw = p.height * p.width;

        int64_t const c0 = chunk * kIm2colChannelsPerItem;
        int64_t const c1 = ydMin(p.channels, c0 + kIm2colChannelsPerItem);
        int64_t group = -1;
        // Per-group sampling state: four corner offsets into the channel plane and their weights
        // (zero for a corner outside the input), and the modulation.
        int64_t idx00 = 0, idx01 = 0, idx10 = 0, idx11 = 0;
        float w00 = 0.f, w01 = 0.f, w10 = 0.f, w11 = 0.f, m = 0.f;
        bool inside = false;
        for (int64_t c = c0; c < c1; ++c)
        {
            int64_t const g = c / channelsPerGroup;
            if (g != group)
            {
                group = g;
                int64_t const offBase = ((b * p.deformGroups + g) * taps + t) * 2 * area + pos;
                float const dy = St::load(offset[offBase]);
                float const dx = St::load(offset[offBase + area]);
                m = St::load(mask[(b * p.deformGroups + g) * taps * area + t * area + pos]);
                // (base + tap) is an exact integer in FP32, then + offset: the reference's order.
                float const y = static_cast<float>(ho * p.strideH - p.padH + ki * p.dilationH) + dy;
                float const xx = static_cast<float>(wo * p.strideW - p.padW + kj * p.dilationW) + dx;
                inside = y > -1.f && y < static_cast<float>(p.height) && xx > -1.f && xx < static_cast<float>(p.width);
                if (inside)
                {
                    float const y0 = floorf(y);
                    float const x0 = floorf(xx);
                    float const ly = y - y0;
                    float const lx = xx - x0;
                    float const hy = 1.f - ly;
                    float const hx = 1.f - lx;
                    // -1 <= y0 <= H-1 and -1 <= x0 <= W-1 here, so the casts are safe.
                    int64_t const yi = static_cast<int64_t>(y0);
                    int64_t const xi = static_cast<int64_t>(x0);
                    bool const top = yi >= 0;
                    bool const bottom = yi + 1 <= p.height - 1;
                    bool const left = xi >= 0;
                    bool const right = xi + 1 <= p.width - 1;
                    w00 = (top && left) ? hy * hx : 0.f;
                    w01 = (top && right) ? hy * lx : 0.f;
                    w10 = (bottom && left) ? ly * hx : 0.f;
                    w11 = (bottom && right) ? ly * lx : 0.f;
                    // Clamped like the reference's gather; a clamped corner has weight 0.
                    int64_t const yc0 = ydMax<int64_t>(yi, 0);
                    int64_t const yc1 = ydMin<int64_t>(yi + 1, p.height - 1);
                    int64_t const xc0 = ydMax<int64_t>(xi, 0);
                    int64_t const xc1 = ydMin<int64_t>(xi + 1, p.width - 1);
                    idx00 = yc0 * p.width + xc0;
                    idx01 = yc0 * p.width + xc1;
                    idx10 = yc1 * p.width + xc0;
                    idx11 = yc1 * p.width + xc1;
                }
            }
            float value = 0.f;
            if (inside)
            {
                T const* plane = x + (b * p.channels + c) * hw;
                // Same association as the reference: ((c00 + c01) + c10) + c11, then * mask.
                float const c00 = St::load(plane[idx00]) * w00;
                float const c01 = St::load(plane[idx01]) * w01;
                float const c10 = St::load(plane[idx10]) * w10;
                float const c11 = St::load(plane[idx11]) * w11;
                value = (((c00 + c01) + c10) + c11) * m;
            }
            else
            {
                value = 0.f * m; // the reference multiplies its zero sample by the mask too
            }
            cols[((b * p.channels + c) * taps + t) * area + pos] = St::store(value);
        }
    }
};

template <class Exec, class St>
Status deformIm2col(Exec exec, DeformIm2colParams const& p, typename St::type const* x,
    typename St::type const* offset, typename St::type const* mask, typename St::type* cols)
{
    Status const s = checkDeformIm2colParams(p);
    if (s != kSUCCESS)
    {
        return s;
    }
    int64_t const chunks = (p.channels + kIm2colChannelsPerItem - 1) / kIm2colChannelsPerItem;
    int64_t const items = p.batch * chunks * p.kernelH * p.kernelW * p.outH * p.outW;
    forEach(exec, items, DeformIm2colFunctor<St>{p, x, offset, mask, cols});
    return kSUCCESS;
}

} // namespace yd
