// Core value types of the yolact C++ runtime: images, masks, detections and the engine-contract
// outputs. CPU only; nothing here needs CUDA or TensorRT.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace yolact {

// Every error the library reports: one line meant for the user.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A BGR uint8 image, interleaved (HWC), not owned. `stride` is bytes per row (0 = width * 3).
struct ImageView {
    const uint8_t* data = nullptr;
    int height = 0;
    int width = 0;
    size_t stride = 0;

    size_t row_bytes() const { return stride ? stride : static_cast<size_t>(width) * 3; }
    const uint8_t* row(int y) const { return data + static_cast<size_t>(y) * row_bytes(); }
    bool empty() const { return data == nullptr || height <= 0 || width <= 0; }
};

// An owned BGR uint8 image (tightly packed rows).
struct Image {
    int height = 0;
    int width = 0;
    std::vector<uint8_t> data;

    Image() = default;
    Image(int h, int w) : height(h), width(w), data(static_cast<size_t>(h) * w * 3, 0) {}
    ImageView view() const { return {data.data(), height, width, static_cast<size_t>(width) * 3}; }
    uint8_t* row(int y) { return data.data() + static_cast<size_t>(y) * width * 3; }
};

// A binary mask at image resolution, row-major, one byte per pixel (0 or 1).
struct Mask {
    int height = 0;
    int width = 0;
    std::vector<uint8_t> data;

    bool at(int y, int x) const { return data[static_cast<size_t>(y) * width + x] != 0; }
    size_t area() const;
};

// One final detection, as yolact_deploy.postprocess.finalize produces it.
struct Detection {
    int x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // pixels, ordered, clamped to the image, truncated
    int class_id = -1;                   // 0-based index into the class names
    float score = 0.f;                   // box score
    float mask_score = 0.f;              // YOLACT++ re-scored mask score (== score otherwise)
    Mask mask;                           // empty when masks were not requested
};

// One image's slice of the engine-contract outputs (fixed K, prototype-resolution masks).
// Pointers are not owned; `mask_scores` may be null (then scores are used).
struct ContractView {
    int num_detections = 0;
    int max_detections = 0;        // K
    int proto_height = 0;          // Hp
    int proto_width = 0;           // Wp
    const float* boxes = nullptr;  // [K, 4] x1 y1 x2 y2 relative to the image
    const float* scores = nullptr;       // [K]
    const float* mask_scores = nullptr;  // [K] or null
    const int32_t* classes = nullptr;    // [K], -1 pads
    const float* masks = nullptr;        // [K, Hp, Wp] cropped probabilities
};

// Batched engine-contract outputs in host memory (what a backend returns).
struct BatchOutputs {
    int batch = 0;
    int max_detections = 0;
    int proto_height = 0;
    int proto_width = 0;
    std::vector<int32_t> num_detections;  // [B]
    std::vector<float> boxes;             // [B, K, 4]
    std::vector<float> scores;            // [B, K]
    std::vector<float> mask_scores;       // [B, K] (may be empty)
    std::vector<int32_t> classes;         // [B, K]
    std::vector<float> masks;             // [B, K, Hp, Wp]

    // Allocates every buffer for the given shape (zero-filled, classes -1).
    void resize(int batch, int max_detections, int proto_height, int proto_width);
    // The view of image `b`; throws Error when the buffers do not match the shape.
    ContractView view(int b) const;
};

}  // namespace yolact
