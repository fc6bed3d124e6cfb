// Detections -> JSON: the response format of the yolact services and COCO results entries.
#pragma once

#include <string>
#include <vector>

#include "yolact/types.hpp"

namespace yolact {

struct ResultFormat {
    bool masks = true;  // include {"size": [h, w], "counts": "<COCO RLE>"} per detection
};

// {"width":W,"height":H,"detections":[{"class_id","category_id","label","score","mask_score",
//  "box":[x1,y1,x2,y2],"bbox":[x,y,w,h],"mask":{"size":[h,w],"counts":"..."}}]}
// The same layout the Python service returns (docs/serving.md).
std::string image_result_json(const std::vector<Detection>& detections, int height, int width,
                              const std::vector<std::string>& class_names,
                              const std::vector<int>& category_ids,
                              const ResultFormat& format = {});

// COCO results entries (bbox with the box score, segm with the mask score), as
// ImageDetections.to_coco: detections with an empty box are skipped. Returns a JSON array.
std::string coco_results_json(const std::vector<Detection>& detections, long long image_id,
                              const std::vector<int>& category_ids);

}  // namespace yolact
