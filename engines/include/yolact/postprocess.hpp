// From engine-contract outputs to final detections: the C++ twin of
// yolact_deploy.postprocess.finalize (score threshold, box sanitising, mask upsampling).
#pragma once

#include <vector>

#include "yolact/types.hpp"

namespace yolact {

struct PostprocessOptions {
    float score_threshold = 0.f;  // keep box score > threshold (strict, as the official code)
    int top_k = -1;               // keep at most this many (after the threshold); -1 = all
    bool masks = true;            // false: skip mask upsampling (Detection::mask stays empty)
};

// Bilinear resize of one float map [src_h, src_w] to [dst_h, dst_w] with half-pixel centres, as
// OpenCV cv2.resize(INTER_LINEAR) on float32 (== torch bilinear, align_corners=False).
void resize_bilinear_map(const float* src, int src_h, int src_w, float* dst, int dst_h, int dst_w);

// Resize + threshold (> 0.5) of one prototype-resolution mask to the image size.
Mask upsample_mask(const float* proto_mask, int proto_h, int proto_w, int height, int width);

// Relative x1 y1 x2 y2 -> pixels: ordered, clamped (min side to 0, max side to the image size),
// truncated toward zero. NaN coordinates become 0.
void sanitize_box(const float* box, int height, int width, int out[4]);

// One image: contract view + original image size -> detections, sorted as the engine sorted them
// (box score, descending). num_detections is clamped to [0, K].
std::vector<Detection> finalize(const ContractView& outputs, int height, int width,
                                const PostprocessOptions& options = {});

}  // namespace yolact
