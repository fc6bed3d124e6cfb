// Drawing detections on a BGR image (OpenCV imgproc), matching yolact_deploy.visualize.draw_detections
// pixel for pixel: masks, boxes and "label: score" text.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "yolact/types.hpp"

namespace yolact {

// The BGR colour of detection i (the palette of visualize.py).
std::array<uint8_t, 3> detection_color(int i);

struct DrawOptions {
    double mask_alpha = 0.45;  // a double like the Python default
    bool boxes = true;
    bool labels = true;                    // "<class name>: <mask score>" on a filled box
    std::vector<std::string> class_names;  // unknown class ids are written as numbers
};

// Masks blended lowest mask score first, then 1-px box outlines and labels; returns the drawn copy.
Image draw_detections(const ImageView& image, const std::vector<Detection>& detections,
                      const DrawOptions& options = {});

}  // namespace yolact
