#include "yolact/draw.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include <opencv2/imgproc.hpp>

namespace yolact {
namespace {

// The palette of yolact_deploy/deploy/draw.py, written there as RGB and used as BGR.
constexpr uint8_t kPaletteRgb[][3] = {
    {244, 67, 54},  {233, 30, 99},  {156, 39, 176}, {103, 58, 183}, {63, 81, 181},
    {33, 150, 243}, {3, 169, 244},  {0, 188, 212},  {0, 150, 136},  {76, 175, 80},
    {139, 195, 74}, {205, 220, 57}, {255, 235, 59}, {255, 193, 7},  {255, 152, 0},
    {255, 87, 34},  {121, 85, 72},  {158, 158, 158}, {96, 125, 139}};
constexpr int kPaletteSize = sizeof(kPaletteRgb) / sizeof(kPaletteRgb[0]);

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
    // stable descending sort, as draw.py's argsort(-scores, stable)[::-1]).
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
    // The same OpenCV calls as yolact_deploy/deploy/draw.py, on the blended image.
    cv::Mat canvas(h, w, CV_8UC3, out.data.data());
    for (int i : order) {
        const Detection& d = dets[i];
        const std::array<uint8_t, 3> c = detection_color(i);
        const cv::Scalar colour(c[0], c[1], c[2]);
        if (options.boxes) cv::rectangle(canvas, cv::Point(d.x1, d.y1), cv::Point(d.x2, d.y2), colour, 1);
        if (options.labels) {
            const bool known = d.class_id >= 0 && static_cast<size_t>(d.class_id) < options.class_names.size();
            char score[32];
            std::snprintf(score, sizeof score, "%.2f", static_cast<double>(d.mask_score));
            const std::string text = (known ? options.class_names[d.class_id] : std::to_string(d.class_id)) + ": " + score;
            int base = 0;
            const cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_DUPLEX, 0.5, 1, &base);
            const int y_text = std::max(d.y1, ts.height + 4);
            const int x_text = std::max(0, std::min(d.x1, w - ts.width));  // keep the label inside the image
            cv::rectangle(canvas, cv::Point(x_text, y_text - ts.height - 4), cv::Point(x_text + ts.width, y_text), colour, -1);
            cv::putText(canvas, text, cv::Point(x_text, y_text - 3), cv::FONT_HERSHEY_DUPLEX, 0.5,
                        cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
        }
    }
    return out;
}

}  // namespace yolact
