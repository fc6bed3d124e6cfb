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

}  // namespace

void resize_bilinear_map(const float* src, int sh, int sw, float* dst, int dh, int dw) {
    if (sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0) throw Error("resize_bilinear_map: empty size");
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

Mask upsample_mask(const float* proto, int ph, int pw, int height, int width) {
    Mask m;
    m.height = height;
    m.width = width;
    m.data.assign(static_cast<size_t>(height) * width, 0);
    if (height <= 0 || width <= 0) return m;
    // An all-zero map (far outside its crop) resizes to zeros: skip the work.
    const size_t plane = static_cast<size_t>(ph) * pw;
    if (std::all_of(proto, proto + plane, [](float v) { return v == 0.f; })) return m;
    std::vector<float> full(static_cast<size_t>(height) * width);
    resize_bilinear_map(proto, ph, pw, full.data(), height, width);
    for (size_t i = 0; i < full.size(); ++i) m.data[i] = full[i] > 0.5f ? 1 : 0;
    return m;
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
