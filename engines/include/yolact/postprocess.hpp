// From engine-contract outputs to final detections: the C++ twin of
// yolact_deploy.postprocess.finalize (score threshold, box sanitising, mask upsampling).
#pragma once

#include <cstdint>
#include <vector>

#include "yolact/types.hpp"

namespace yolact {

struct PostprocessOptions {
    float score_threshold = 0.f;  // keep box score > threshold (strict, as the official code)
    int top_k = -1;               // keep at most this many (after the threshold); -1 = all
    bool masks = true;            // false: skip mask upsampling (Detection::mask stays empty)
};

// Bilinear resize of one float map [src_h, src_w] to [dst_h, dst_w] with half-pixel centres, as
// OpenCV cv2.resize(INTER_LINEAR) on float32 (== torch bilinear, align_corners=False) in its generic
// path (yolact_deploy.postprocess.resize_masks), an exact 2x downscale included (2x2 average).
void resize_bilinear_map(const float* src, int src_h, int src_w, float* dst, int dst_h, int dst_w);

// A binary mask at image resolution stored as the bitmap of its bounding box: image pixel (y, x) is
// data[(y - top) * width + (x - left)] inside the box and 0 outside. An empty mask has an empty box.
struct MaskCrop {
    int image_height = 0, image_width = 0;
    int top = 0, left = 0, height = 0, width = 0;
    std::vector<uint8_t> data;  // [height, width], row-major, 0 or 1

    Mask dense() const;  // the full [image_height, image_width] mask
    size_t area() const;
};

// resize_bilinear_map + threshold (> 0.5) of one prototype-resolution mask, computed only where the
// result can be nonzero: the output pixels whose bilinear taps reach the map's nonzero rows and
// columns (a cropped mask is exactly 0 outside its box, and so is any sample of zeros). Identical
// bit for bit to thresholding the full-image resize; the work follows the box, not the image.
MaskCrop upsample_mask_crop(const float* proto_mask, int proto_h, int proto_w, int height, int width);

// Resize + threshold (> 0.5) of one prototype-resolution mask to the image size
// (upsample_mask_crop(...).dense()).
Mask upsample_mask(const float* proto_mask, int proto_h, int proto_w, int height, int width);

// Relative x1 y1 x2 y2 -> pixels: ordered, clamped (min side to 0, max side to the image size),
// truncated toward zero. NaN coordinates become 0.
void sanitize_box(const float* box, int height, int width, int out[4]);

// One image: contract view + original image size -> detections, sorted as the engine sorted them
// (box score, descending). num_detections is clamped to [0, K].
std::vector<Detection> finalize(const ContractView& outputs, int height, int width,
                                const PostprocessOptions& options = {});

}  // namespace yolact
