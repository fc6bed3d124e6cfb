// Drawing detections on a BGR image, matching yolact_deploy.visualize.draw_detections pixel for pixel
// for masks and boxes (label text is not drawn: it needs a font; print labels instead).
#pragma once

#include <array>
#include <vector>

#include "yolact/types.hpp"

namespace yolact {

// The BGR colour of detection i (the palette of visualize.py).
std::array<uint8_t, 3> detection_color(int i);

struct DrawOptions {
    double mask_alpha = 0.45;  // a double like the Python default
    bool boxes = true;
};

// Masks blended lowest mask score first, then 1-px box outlines; returns the drawn copy.
Image draw_detections(const ImageView& image, const std::vector<Detection>& detections,
                      const DrawOptions& options = {});

}  // namespace yolact
