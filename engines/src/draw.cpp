#include "yolact/draw.hpp"

#include <algorithm>
#include <numeric>

namespace yolact {
namespace {

// The palette of yolact_deploy/visualize.py, written there as RGB and used as BGR.
constexpr uint8_t kPaletteRgb[][3] = {
    {244, 67, 54},  {233, 30, 99},  {156, 39, 176}, {103, 58, 183}, {63, 81, 181},
    {33, 150, 243}, {3, 169, 244},  {0, 188, 212},  {0, 150, 136},  {76, 175, 80},
    {139, 195, 74}, {205, 220, 57}, {255, 235, 59}, {255, 193, 7},  {255, 152, 0},
    {255, 87, 34},  {121, 85, 72},  {158, 158, 158}, {96, 125, 139}};
constexpr int kPaletteSize = sizeof(kPaletteRgb) / sizeof(kPaletteRgb[0]);

void put(Image& im, int x, int y, const std::array<uint8_t, 3>& c) {
    if (x < 0 || y < 0 || x >= im.width || y >= im.height) return;
    uint8_t* p = im.row(y) + x * 3;
    p[0] = c[0];
    p[1] = c[1];
    p[2] = c[2];
}

}  // namespace

std::array<uint8_t, 3> detection_color(int i) {
    const uint8_t* rgb = kPaletteRgb[((i * 5) % kPaletteSize + kPaletteSize) % kPaletteSize];
    return {rgb[2], rgb[1], rgb[0]};
}

Image draw_detections(const ImageView& image, const std::vector<Detection>& dets,
                      const DrawOptions& options) {
    if (image.empty()) throw Error("draw_detections: empty image");
    const int h = image.height, w = image.width;
    // Lowest mask score first; among equal scores the later detection first (the reverse of a
    // stable descending sort, as visualize.py's argsort(-scores, stable)[::-1]).
    std::vector<int> order(dets.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return dets[a].mask_score > dets[b].mask_score; });
    std::reverse(order.begin(), order.end());

    // Blend in float32 exactly as numpy does: out * float32(1 - a) + float32(color * a).
    std::vector<float> acc(static_cast<size_t>(h) * w * 3);
    for (int y = 0; y < h; ++y) {
        const uint8_t* r = image.row(y);
        for (int x = 0; x < w * 3; ++x) acc[static_cast<size_t>(y) * w * 3 + x] = r[x];
    }
    const double alpha = options.mask_alpha;
    const float keep = static_cast<float>(1.0 - alpha);
    for (int i : order) {
        const Mask& m = dets[i].mask;
        if (m.data.empty()) continue;
        if (m.height != h || m.width != w) throw Error("draw_detections: mask size differs from the image");
        const std::array<uint8_t, 3> c = detection_color(i);
        const float add[3] = {static_cast<float>(c[0]) * static_cast<float>(alpha),
                              static_cast<float>(c[1]) * static_cast<float>(alpha),
                              static_cast<float>(c[2]) * static_cast<float>(alpha)};
        for (size_t p = 0; p < m.data.size(); ++p) {
            if (!m.data[p]) continue;
            float* px = acc.data() + p * 3;
            for (int ch = 0; ch < 3; ++ch) px[ch] = px[ch] * keep + add[ch];
        }
    }
    Image out(h, w);
    for (size_t i = 0; i < acc.size(); ++i) {
        out.data[i] = static_cast<uint8_t>(std::clamp(acc[i], 0.f, 255.f));  // truncation, as astype
    }
    if (options.boxes) {
        for (int i : order) {
            const Detection& d = dets[i];
            const std::array<uint8_t, 3> c = detection_color(i);
            // cv2.rectangle(thickness=1): the four edges, corners included, clipped to the image.
            const int xa = std::max(std::min(d.x1, d.x2), 0), xb = std::min(std::max(d.x1, d.x2), w - 1);
            const int ya = std::max(std::min(d.y1, d.y2), 0), yb = std::min(std::max(d.y1, d.y2), h - 1);
            for (int x = xa; x <= xb; ++x) {
                put(out, x, d.y1, c);
                put(out, x, d.y2, c);
            }
            for (int y = ya; y <= yb; ++y) {
                put(out, d.x1, y, c);
                put(out, d.x2, y, c);
            }
        }
    }
    return out;
}

}  // namespace yolact
