// C++ checks of the CPU C API that need no Python: argument validation, edge cases and FP16/FP32
// consistency. Built under AddressSanitizer too (with leak detection, which Python runs cannot use).
// The semantic comparison with yolact_deploy/ops is tests/plugins/test_plugins_cpu.py.
#include "deform_im2col_capi.h"
#include "fast_nms_capi.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace
{
int gFailed = 0;
int gPassed = 0;

void check(bool ok, char const* what)
{
    if (ok)
    {
        ++gPassed;
    }
    else
    {
        ++gFailed;
        std::printf("FAILED: %s\n", what);
    }
}

std::vector<uint16_t> toHalf(std::vector<float> const& v)
{
    std::vector<uint16_t> h(v.size());
    yd_float_to_half(v.data(), h.data(), static_cast<int64_t>(v.size()));
    return h;
}

std::vector<float> toFloat(std::vector<uint16_t> const& h)
{
    std::vector<float> v(h.size());
    yd_half_to_float(h.data(), v.data(), static_cast<int64_t>(h.size()));
    return v;
}

void testHalfRoundTrip()
{
    std::vector<uint16_t> all(65536);
    for (uint32_t i = 0; i < 65536; ++i)
    {
        all[i] = static_cast<uint16_t>(i);
    }
    std::vector<float> f = toFloat(all);
    std::vector<uint16_t> back = toHalf(f);
    bool ok = true;
    for (uint32_t i = 0; i < 65536; ++i)
    {
        bool const nan = (i & 0x7c00u) == 0x7c00u && (i & 0x3ffu) != 0;
        ok = ok && (nan ? std::isnan(f[i]) : back[i] == all[i]);
    }
    check(ok, "every binary16 value survives half -> float -> half");
}

void testDeformIm2col()
{
    // Invalid: channels not divisible by deformable groups.
    std::vector<float> x(2 * 3 * 4 * 4, 1.f), off(2 * 2 * 2 * 9 * 16, 0.f), mask(2 * 2 * 9 * 16, 1.f);
    std::vector<float> cols(2 * 3 * 9 * 16, -7.f);
    int32_t s = yd_deform_im2col_cpu(0, x.data(), off.data(), mask.data(), cols.data(), 2, 3, 4, 4, 4, 4, 3, 3, 1, 1,
        1, 1, 1, 1, 2);
    check(s != 0 && std::strlen(yd_last_error()) > 0, "im2col rejects C % dg != 0 with a message");
    s = yd_deform_im2col_cpu(7, x.data(), off.data(), mask.data(), cols.data(), 2, 3, 4, 4, 4, 4, 3, 3, 1, 1, 1, 1,
        1, 1, 1);
    check(s != 0, "im2col rejects an unknown dtype");
    s = yd_deform_im2col_cpu(0, nullptr, nullptr, nullptr, nullptr, 0, 3, 4, 4, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    check(s == 0, "im2col accepts batch 0");

    // Offsets far outside the input sample zeros; a zero mask gives zeros.
    std::fill(off.begin(), off.end(), 1e6f);
    s = yd_deform_im2col_cpu(0, x.data(), off.data(), mask.data(), cols.data(), 1, 4, 4, 4, 4, 4, 3, 3, 1, 1, 1, 1,
        1, 1, 1);
    bool zeros = s == 0;
    for (size_t i = 0; i < 4 * 9 * 16; ++i)
    {
        zeros = zeros && cols[i] == 0.f;
    }
    check(zeros, "im2col: offsets far outside give zeros");

    // FP16 path == FP32 path on half-exact inputs, rounded once at the end.
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.f, 2.f);
    int64_t const B = 2, C = 4, H = 5, W = 6, kh = 3, kw = 2, dg = 2, sh = 2, sw = 1, ph = 1, pw = 0, dh = 1, dw = 2;
    int64_t const ho = (H + 2 * ph - (dh * (kh - 1) + 1)) / sh + 1, wo = (W + 2 * pw - (dw * (kw - 1) + 1)) / sw + 1;
    std::vector<float> xs(B * C * H * W), os(B * 2 * dg * kh * kw * ho * wo), ms(B * dg * kh * kw * ho * wo);
    for (auto* v : {&xs, &os, &ms})
    {
        for (float& e : *v)
        {
            e = normal(rng);
        }
        *v = toFloat(toHalf(*v));
    }
    std::vector<float> c32(B * C * kh * kw * ho * wo);
    std::vector<uint16_t> c16(c32.size());
    auto const xh = toHalf(xs), oh = toHalf(os), mh = toHalf(ms);
    int32_t const a = yd_deform_im2col_cpu(0, xs.data(), os.data(), ms.data(), c32.data(), B, C, H, W, ho, wo, kh, kw,
        sh, sw, ph, pw, dh, dw, dg);
    int32_t const b = yd_deform_im2col_cpu(1, xh.data(), oh.data(), mh.data(), c16.data(), B, C, H, W, ho, wo, kh, kw,
        sh, sw, ph, pw, dh, dw, dg);
    check(a == 0 && b == 0 && toHalf(c32) == c16, "im2col: FP16 I/O equals the FP32 result rounded to FP16");
}

void testFastNms()
{
    int32_t num[2];
    std::vector<float> boxes(2 * 5 * 4), scores(2 * 5 * 3, 0.01f), ob(2 * 4 * 4, 9.f), os(2 * 4, 9.f);
    std::vector<int32_t> oc(2 * 4, 9), oi(2 * 4, 9);
    int32_t s = yd_fast_nms_cpu(0, boxes.data(), scores.data(), 2, 5, 3, 0.05f, 0.5f, 0, 4, 0, 0, num, ob.data(),
        os.data(), oc.data(), oi.data());
    check(s != 0, "nms rejects top_k 0");
    s = yd_fast_nms_cpu(0, boxes.data(), scores.data(), 2, 5, 3, NAN, 0.5f, 10, 4, 0, 0, num, ob.data(), os.data(),
        oc.data(), oi.data());
    check(s != 0, "nms rejects a NaN threshold");

    // No score above the threshold: zero detections and the padding values everywhere.
    s = yd_fast_nms_cpu(0, boxes.data(), scores.data(), 2, 5, 3, 0.05f, 0.5f, 10, 4, 0, 0, num, ob.data(), os.data(),
        oc.data(), oi.data());
    bool padded = s == 0 && num[0] == 0 && num[1] == 0;
    for (int i = 0; i < 8; ++i)
    {
        padded = padded && os[i] == 0.f && oc[i] == -1 && oi[i] == -1;
    }
    for (float v : ob)
    {
        padded = padded && v == 0.f;
    }
    check(padded, "nms: no candidate gives num_detections 0 and padding");

    // Random case: FP16 path == FP32 path on half-exact inputs; detections consistent with indices.
    std::mt19937 rng(2);
    std::uniform_real_distribution<float> uni(0.f, 1.f);
    int64_t const B = 3, N = 40, C = 5;
    int32_t const K = 30;
    std::vector<float> bx(B * N * 4), sc(B * N * C);
    for (int64_t i = 0; i < B * N; ++i)
    {
        float const x1 = uni(rng), y1 = uni(rng);
        bx[i * 4 + 0] = x1;
        bx[i * 4 + 1] = y1;
        bx[i * 4 + 2] = x1 + 0.3f * uni(rng);
        bx[i * 4 + 3] = y1 + 0.3f * uni(rng);
    }
    for (float& v : sc)
    {
        v = std::floor(uni(rng) * 8.f) / 8.f; // many ties
    }
    bx = toFloat(toHalf(bx));
    int32_t n32[B], n16[B];
    std::vector<float> b32(B * K * 4), s32(B * K);
    std::vector<uint16_t> b16(B * K * 4), s16(B * K);
    std::vector<int32_t> c32(B * K), i32(B * K), c16(B * K), i16(B * K);
    auto const bxh = toHalf(bx), sch = toHalf(sc);
    for (int32_t cross = 0; cross <= 1; ++cross)
    {
        int32_t const r1 = yd_fast_nms_cpu(0, bx.data(), sc.data(), B, N, C, 0.3f, 0.4f, 7, K, cross, 0, n32, b32.data(),
            s32.data(), c32.data(), i32.data());
        int32_t const r2 = yd_fast_nms_cpu(1, bxh.data(), sch.data(), B, N, C, 0.3f, 0.4f, 7, K, cross, 0, n16,
            b16.data(), s16.data(), c16.data(), i16.data());
        bool same = r1 == 0 && r2 == 0 && std::memcmp(n32, n16, sizeof n32) == 0 && c32 == c16 && i32 == i16
            && toHalf(b32) == b16 && toHalf(s32) == s16;
        bool consistent = true;
        for (int64_t b = 0; b < B; ++b)
        {
            for (int32_t k = 0; k < K; ++k)
            {
                int64_t const e = b * K + k;
                bool const valid = k < n32[b];
                consistent = consistent && (valid == (i32[e] >= 0)) && (valid == (c32[e] >= 0));
                if (valid)
                {
                    consistent = consistent && b32[e * 4] == bx[(b * N + i32[e]) * 4]
                        && (cross || s32[e] == sc[(b * N + i32[e]) * C + c32[e]]);
                }
            }
        }
        check(same, cross ? "nms cross-class: FP16 path equals FP32 path" : "nms: FP16 path equals FP32 path");
        check(consistent, "nms: outputs are consistent with the prior indices");
    }
}
} // namespace

int main()
{
    testHalfRoundTrip();
    testDeformIm2col();
    testFastNms();
    std::printf("%d passed, %d failed\n", gPassed, gFailed);
    return gFailed == 0 ? 0 : 1;
}
