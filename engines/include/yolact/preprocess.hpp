// Input preparation on the CPU: the official bilinear resize and batch packing for the engine input
// `images` (uint8 [B, H, W, 3] BGR; the graph converts, resizes, normalises and transposes).
#pragma once

#include <vector>

#include "yolact/types.hpp"

namespace yolact {

// Bilinear resize of a BGR uint8 image to `out_height` x `out_width`, computed in float like
// torch.nn.functional.interpolate(mode='bilinear', align_corners=False, antialias=False) on the
// float image (the official FastBaseTransform). `dst` receives out_height*out_width*3 floats, HWC BGR.
void resize_bilinear(const ImageView& src, int out_height, int out_width, float* dst);

// The same resize rounded to uint8 (nearest, ties to even): what a batch of mixed sizes is fed as.
// The in-graph resize is then the identity, so the only deviation from the reference is this rounding
// (at most 0.5 grey levels).
Image resize_bilinear_u8(const ImageView& src, int out_height, int out_width);

// Allowed input heights/widths of an engine (its optimization profile) and the network size.
struct InputGeometry {
    int network_height = 550;
    int network_width = 550;
    int min_height = 1, max_height = 1 << 14;
    int min_width = 1, max_width = 1 << 14;
    int max_batch = 1;
};

// How a batch is fed: every image at its own size (exact), or every image resized to the network size.
struct InputPlan {
    int height = 0;
    int width = 0;
    bool resized = false;  // true: images were resized on the CPU (uint8 rounding applies)
};

// Same-size images inside the profile go as they are; otherwise all are resized to the network size.
// Throws Error for an empty batch, an empty image, more images than max_batch, or a network size
// outside the profile.
InputPlan plan_input(const std::vector<ImageView>& images, const InputGeometry& geometry);

// Writes the batch as uint8 [B, plan.height, plan.width, 3] into `dst` (B*H*W*3 bytes).
void pack_input(const std::vector<ImageView>& images, const InputPlan& plan, uint8_t* dst);

}  // namespace yolact
