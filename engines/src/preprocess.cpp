#include "yolact/preprocess.hpp"

#include <cmath>
#include <cstring>
#include <string>

namespace yolact {
namespace {

// torch's linear interpolation indices/weights (UpSample.h, align_corners=False): the source
// coordinate is computed in float and clamped at 0; the upper neighbour is clamped at size-1.
struct Tap {
    int i0, i1;
    float w0, w1;
};

std::vector<Tap> torch_taps(int in_size, int out_size) {
    std::vector<Tap> taps(out_size);
    const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
    for (int d = 0; d < out_size; ++d) {
        float src = scale * (static_cast<float>(d) + 0.5f) - 0.5f;
        if (src < 0.f) src = 0.f;
        int i0 = static_cast<int>(src);
        if (i0 > in_size - 1) i0 = in_size - 1;
        const int i1 = i0 + (i0 < in_size - 1 ? 1 : 0);
        float l1 = src - static_cast<float>(i0);
        l1 = l1 < 0.f ? 0.f : (l1 > 1.f ? 1.f : l1);
        taps[d] = {i0, i1, 1.f - l1, l1};
    }
    return taps;
}

void check_image(const ImageView& im, const char* what) {
    if (im.empty()) throw Error(std::string(what) + ": empty image");
    if (im.stride != 0 && im.stride < static_cast<size_t>(im.width) * 3) {
        throw Error(std::string(what) + ": row stride smaller than width*3");
    }
}

}  // namespace

void resize_bilinear(const ImageView& src, int out_h, int out_w, float* dst) {
    check_image(src, "resize_bilinear");
    if (out_h <= 0 || out_w <= 0) throw Error("resize_bilinear: output size must be positive");
    const std::vector<Tap> ty = torch_taps(src.height, out_h);
    const std::vector<Tap> tx = torch_taps(src.width, out_w);
    for (int y = 0; y < out_h; ++y) {
        const Tap& v = ty[y];
        const uint8_t* r0 = src.row(v.i0);
        const uint8_t* r1 = src.row(v.i1);
        float* out = dst + static_cast<size_t>(y) * out_w * 3;
        for (int x = 0; x < out_w; ++x) {
            const Tap& h = tx[x];
            for (int c = 0; c < 3; ++c) {
                const float a = static_cast<float>(r0[h.i0 * 3 + c]) * h.w0 +
                                static_cast<float>(r0[h.i1 * 3 + c]) * h.w1;
                const float b = static_cast<float>(r1[h.i0 * 3 + c]) * h.w0 +
                                static_cast<float>(r1[h.i1 * 3 + c]) * h.w1;
                out[x * 3 + c] = v.w0 * a + v.w1 * b;
            }
        }
    }
}

Image resize_bilinear_u8(const ImageView& src, int out_h, int out_w) {
    std::vector<float> tmp(static_cast<size_t>(out_h) * out_w * 3);
    resize_bilinear(src, out_h, out_w, tmp.data());
    Image out(out_h, out_w);
    for (size_t i = 0; i < tmp.size(); ++i) {
        const float v = std::nearbyint(tmp[i]);  // default rounding mode: ties to even
        out.data[i] = static_cast<uint8_t>(v < 0.f ? 0.f : (v > 255.f ? 255.f : v));
    }
    return out;
}

InputPlan plan_input(const std::vector<ImageView>& images, const InputGeometry& g) {
    if (images.empty()) throw Error("empty batch: no images to run");
    if (static_cast<int>(images.size()) > g.max_batch) {
        throw Error("batch of " + std::to_string(images.size()) + " images exceeds the engine's " +
                    "batch profile (max " + std::to_string(g.max_batch) + ")");
    }
    for (size_t i = 0; i < images.size(); ++i) {
        check_image(images[i], ("image " + std::to_string(i)).c_str());
    }
    const int h = images[0].height, w = images[0].width;
    bool same = true;
    for (const ImageView& im : images) same = same && im.height == h && im.width == w;
    const bool in_profile = h >= g.min_height && h <= g.max_height && w >= g.min_width && w <= g.max_width;
    if (same && in_profile) return {h, w, false};
    const int nh = g.network_height, nw = g.network_width;
    if (nh < g.min_height || nh > g.max_height || nw < g.min_width || nw > g.max_width) {
        throw Error("the network size " + std::to_string(nh) + "x" + std::to_string(nw) +
                    " is outside the engine's input profile; cannot feed images of " +
                    std::to_string(h) + "x" + std::to_string(w));
    }
    return {nh, nw, true};
}

void pack_input(const std::vector<ImageView>& images, const InputPlan& plan, uint8_t* dst) {
    const size_t row = static_cast<size_t>(plan.width) * 3;
    const size_t plane = row * plan.height;
    for (size_t i = 0; i < images.size(); ++i) {
        const ImageView& im = images[i];
        uint8_t* out = dst + i * plane;
        if (im.height == plan.height && im.width == plan.width) {
            for (int y = 0; y < plan.height; ++y) std::memcpy(out + y * row, im.row(y), row);
        } else {
            const Image r = resize_bilinear_u8(im, plan.height, plan.width);
            std::memcpy(out, r.data.data(), plane);
        }
    }
}

}  // namespace yolact
