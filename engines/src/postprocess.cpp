#include "yolact/postprocess.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace yolact {
namespace {

// OpenCV's INTER_LINEAR tables (imgproc resize.cpp semantics): the source coordinate is computed in
// double and rounded to float; the fraction is zeroed where the left/right neighbour falls outside.
struct HTap {
    int x0, x1;
    float a0, a1;
};

std::vector<HTap> cv_htaps(int src, int dst) {
    std::vector<HTap> taps(dst);
    const double scale = 1.0 / (static_cast<double>(dst) / src);
    for (int d = 0; d < dst; ++d) {
        float f = static_cast<float>((d + 0.5) * scale - 0.5);
        int s = static_cast<int>(std::floor(f));
        f -= static_cast<float>(s);
        if (s < 0) { f = 0.f; s = 0; }
        if (s >= src - 1) { f = 0.f; s = src - 1; }
        taps[d] = {s, std::min(s + 1, src - 1), 1.f - f, f};
    }
    return taps;
}

// Vertical taps: the fraction is kept, only the row indices are clamped (as OpenCV does).
struct VTap {
    int y0, y1;
    float b0, b1;
};

std::vector<VTap> cv_vtaps(int src, int dst) {
    std::vector<VTap> taps(dst);
    const double scale = 1.0 / (static_cast<double>(dst) / src);
    for (int d = 0; d < dst; ++d) {
        float f = static_cast<float>((d + 0.5) * scale - 0.5);
        const int s = static_cast<int>(std::floor(f));
        f -= static_cast<float>(s);
        taps[d] = {std::clamp(s, 0, src - 1), std::clamp(s + 1, 0, src - 1), 1.f - f, f};
    }
    return taps;
}

int to_int(float v) {
    if (std::isnan(v)) return 0;
    const float lim = 2.0e9f;
    return static_cast<int>(std::trunc(std::clamp(v, -lim, lim)));
}

// OpenCV switches INTER_LINEAR to its 2x2 area average for an exact 2x downscale; it sums in this
// order, then scales.
inline float area2x(const float* s0, const float* s1, int x) {
    return (((s0[2 * x] + s0[2 * x + 1]) + s1[2 * x]) + s1[2 * x + 1]) * 0.25f;
}

}  // namespace

void resize_bilinear_map(const float* src, int sh, int sw, float* dst, int dh, int dw) {
    if (sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0) throw Error("resize_bilinear_map: empty size");
    if (sh == 2 * dh && sw == 2 * dw) {
        for (int y = 0; y < dh; ++y) {
            const float* s0 = src + static_cast<size_t>(2 * y) * sw;
            for (int x = 0; x < dw; ++x) dst[static_cast<size_t>(y) * dw + x] = area2x(s0, s0 + sw, x);
        }
        return;
    }
    const std::vector<HTap> hx = cv_htaps(sw, dw);
    const std::vector<VTap> vy = cv_vtaps(sh, dh);
    // Horizontally resized source rows, computed once each (rows are reused by neighbouring dy).
    std::vector<float> rows(static_cast<size_t>(sh) * dw);
    std::vector<char> done(sh, 0);
    auto hrow = [&](int y) -> const float* {
        float* out = rows.data() + static_cast<size_t>(y) * dw;
        if (!done[y]) {
            const float* s = src + static_cast<size_t>(y) * sw;
            for (int x = 0; x < dw; ++x) {
                const HTap& t = hx[x];
                out[x] = s[t.x0] * t.a0 + s[t.x1] * t.a1;
            }
            done[y] = 1;
        }
        return out;
    };
    for (int y = 0; y < dh; ++y) {
        const VTap& t = vy[y];
        const float* r0 = hrow(t.y0);
        const float* r1 = hrow(t.y1);
        float* out = dst + static_cast<size_t>(y) * dw;
        for (int x = 0; x < dw; ++x) out[x] = r0[x] * t.b0 + r1[x] * t.b1;
    }
}

Mask MaskCrop::dense() const {
    Mask m;
    m.height = image_height;
    m.width = image_width;
    if (image_height <= 0 || image_width <= 0) return m;
    m.data.assign(static_cast<size_t>(image_height) * image_width, 0);
    for (int y = 0; y < height; ++y) {
        std::copy_n(data.data() + static_cast<size_t>(y) * width, width,
                    m.data.data() + static_cast<size_t>(top + y) * image_width + left);
    }
    return m;
}

size_t MaskCrop::area() const {
    return static_cast<size_t>(std::count_if(data.begin(), data.end(), [](uint8_t v) { return v != 0; }));
}

MaskCrop upsample_mask_crop(const float* proto, int ph, int pw, int height, int width) {
    MaskCrop m;
    m.image_height = height;
    m.image_width = width;
    if (height <= 0 || width <= 0 || ph <= 0 || pw <= 0) return m;
    // The map's nonzero rows [r0, r1] and columns [c0, c1].
    int r0 = ph, r1 = -1, c0 = pw, c1 = -1;
    for (int y = 0; y < ph; ++y) {
        const float* row = proto + static_cast<size_t>(y) * pw;
        for (int x = 0; x < pw; ++x) {
            if (row[x] != 0.f) {
                r0 = std::min(r0, y);
                r1 = y;
                c0 = std::min(c0, x);
                c1 = std::max(c1, x);
            }
        }
    }
    if (r1 < 0) return m;  // all zero: resizes to zeros
    // The output window [y_lo, y_hi) x [x_lo, x_hi) outside which the resize is exactly 0, and its values.
    int y_lo, y_hi, x_lo, x_hi;
    std::vector<float> vals;
    if (ph == 2 * height && pw == 2 * width) {
        y_lo = r0 / 2, y_hi = r1 / 2 + 1, x_lo = c0 / 2, x_hi = c1 / 2 + 1;
        const int ww = x_hi - x_lo;
        vals.resize(static_cast<size_t>(y_hi - y_lo) * ww);
        for (int y = y_lo; y < y_hi; ++y) {
            const float* s0 = proto + static_cast<size_t>(2 * y) * pw + 2 * x_lo;
            for (int x = 0; x < ww; ++x) vals[static_cast<size_t>(y - y_lo) * ww + x] = area2x(s0, s0 + pw, x);
        }
    } else {
        const std::vector<HTap> hx = cv_htaps(pw, width);
        const std::vector<VTap> vy = cv_vtaps(ph, height);
        // The taps are monotonic: first output index whose right tap reaches c0, first whose left tap
        // passes c1 (same for rows).
        x_lo = static_cast<int>(std::partition_point(hx.begin(), hx.end(), [&](const HTap& t) { return t.x1 < c0; }) - hx.begin());
        x_hi = static_cast<int>(std::partition_point(hx.begin(), hx.end(), [&](const HTap& t) { return t.x0 <= c1; }) - hx.begin());
        y_lo = static_cast<int>(std::partition_point(vy.begin(), vy.end(), [&](const VTap& t) { return t.y1 < r0; }) - vy.begin());
        y_hi = static_cast<int>(std::partition_point(vy.begin(), vy.end(), [&](const VTap& t) { return t.y0 <= r1; }) - vy.begin());
        if (x_lo >= x_hi || y_lo >= y_hi) return m;
        const int ww = x_hi - x_lo, top = vy[y_lo].y0, bottom = vy[y_hi - 1].y1 + 1;
        std::vector<float> horiz(static_cast<size_t>(bottom - top) * ww);
        for (int y = top; y < bottom; ++y) {
            const float* s = proto + static_cast<size_t>(y) * pw;
            float* out = horiz.data() + static_cast<size_t>(y - top) * ww;
            for (int x = 0; x < ww; ++x) {
                const HTap& t = hx[x_lo + x];
                out[x] = s[t.x0] * t.a0 + s[t.x1] * t.a1;
            }
        }
        vals.resize(static_cast<size_t>(y_hi - y_lo) * ww);
        for (int y = y_lo; y < y_hi; ++y) {
            const VTap& t = vy[y];
            const float* h0 = horiz.data() + static_cast<size_t>(t.y0 - top) * ww;
            const float* h1 = horiz.data() + static_cast<size_t>(t.y1 - top) * ww;
            float* out = vals.data() + static_cast<size_t>(y - y_lo) * ww;
            for (int x = 0; x < ww; ++x) out[x] = h0[x] * t.b0 + h1[x] * t.b1;
        }
    }
    // Threshold, then keep the bounding box of the set pixels.
    const int wh = y_hi - y_lo, ww = x_hi - x_lo;
    int t0 = wh, t1 = -1, l0 = ww, l1 = -1;
    for (int y = 0; y < wh; ++y) {
        for (int x = 0; x < ww; ++x) {
            if (vals[static_cast<size_t>(y) * ww + x] > 0.5f) {
                t0 = std::min(t0, y);
                t1 = y;
                l0 = std::min(l0, x);
                l1 = std::max(l1, x);
            }
        }
    }
    if (t1 < 0) return m;
    m.top = y_lo + t0;
    m.left = x_lo + l0;
    m.height = t1 - t0 + 1;
    m.width = l1 - l0 + 1;
    m.data.resize(static_cast<size_t>(m.height) * m.width);
    for (int y = 0; y < m.height; ++y) {
        const float* v = vals.data() + static_cast<size_t>(t0 + y) * ww + l0;
        uint8_t* out = m.data.data() + static_cast<size_t>(y) * m.width;
        for (int x = 0; x < m.width; ++x) out[x] = v[x] > 0.5f ? 1 : 0;
    }
    return m;
}

Mask upsample_mask(const float* proto, int ph, int pw, int height, int width) {
    return upsample_mask_crop(proto, ph, pw, height, width).dense();
}

void sanitize_box(const float* b, int height, int width, int out[4]) {
    // float32 arithmetic like numpy on float32 arrays (x * width stays float32).
    const float w = static_cast<float>(width), h = static_cast<float>(height);
    const float x1 = b[0] * w, x2 = b[2] * w, y1 = b[1] * h, y2 = b[3] * h;
    out[0] = to_int(std::max(std::min(x1, x2), 0.f));
    out[1] = to_int(std::max(std::min(y1, y2), 0.f));
    out[2] = to_int(std::min(std::max(x1, x2), w));
    out[3] = to_int(std::min(std::max(y1, y2), h));
}

std::vector<Detection> finalize(const ContractView& o, int height, int width,
                                const PostprocessOptions& options) {
    if (height <= 0 || width <= 0) {
        throw Error("finalize: image size must be positive, got " + std::to_string(height) + "x" +
                    std::to_string(width));
    }
    const int k = std::max(o.max_detections, 0);
    const int n = std::clamp(o.num_detections, 0, k);
    std::vector<Detection> out;
    for (int i = 0; i < n; ++i) {
        if (options.top_k >= 0 && static_cast<int>(out.size()) >= options.top_k) break;
        const float score = o.scores[i];
        if (!(score > options.score_threshold)) continue;
        Detection d;
        int box[4];
        sanitize_box(o.boxes + static_cast<size_t>(i) * 4, height, width, box);
        d.x1 = box[0];
        d.y1 = box[1];
        d.x2 = box[2];
        d.y2 = box[3];
        d.class_id = o.classes[i];
        d.score = score;
        d.mask_score = o.mask_scores ? o.mask_scores[i] : score;
        if (options.masks) {
            const size_t plane = static_cast<size_t>(o.proto_height) * o.proto_width;
            d.mask = upsample_mask(o.masks + i * plane, o.proto_height, o.proto_width, height, width);
        }
        out.push_back(std::move(d));
    }
    return out;
}

}  // namespace yolact
