#include "yolact/results.hpp"

#include <nlohmann/json.hpp>

#include "yolact/rle.hpp"

namespace yolact {
namespace {

using ojson = nlohmann::ordered_json;  // keys in the documented order

// Scores as float32 widened to double: printed in shortest round-trip form, the value reads back as
// the same float32 (Python prints float(np.float32) the same way).
double score(float v) { return static_cast<double>(v); }

ojson rle_json(const Mask& mask) {
    const CocoRle rle = encode_coco_rle(mask);
    return ojson{{"size", {rle.height, rle.width}}, {"counts", rle.counts}};
}

}  // namespace

std::string image_result_json(const std::vector<Detection>& dets, int height, int width,
                              const std::vector<std::string>& class_names,
                              const std::vector<int>& category_ids, const ResultFormat& format) {
    ojson list = ojson::array();
    for (const Detection& d : dets) {
        const bool known = d.class_id >= 0 && static_cast<size_t>(d.class_id) < class_names.size();
        const bool has_cat = d.class_id >= 0 && static_cast<size_t>(d.class_id) < category_ids.size();
        ojson j = {{"class_id", d.class_id},
                   {"category_id", has_cat ? ojson(category_ids[d.class_id]) : ojson(nullptr)},
                   {"label", known ? class_names[d.class_id] : std::to_string(d.class_id)},
                   {"score", score(d.score)},
                   {"mask_score", score(d.mask_score)},
                   {"box", {d.x1, d.y1, d.x2, d.y2}},
                   {"bbox", {d.x1, d.y1, static_cast<long long>(d.x2) - d.x1, static_cast<long long>(d.y2) - d.y1}}};
        if (format.masks && !d.mask.data.empty()) j["mask"] = rle_json(d.mask);
        list.push_back(std::move(j));
    }
    const ojson out = {{"width", width}, {"height", height}, {"detections", std::move(list)}};
    return out.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

std::string coco_results_json(const std::vector<Detection>& dets, long long image_id,
                              const std::vector<int>& category_ids) {
    ojson out = ojson::array();
    for (const Detection& d : dets) {
        if (static_cast<long long>(d.x2 - d.x1) * (d.y2 - d.y1) <= 0) continue;
        if (d.class_id < 0 || static_cast<size_t>(d.class_id) >= category_ids.size()) {
            throw Error("coco_results_json: class id " + std::to_string(d.class_id) + " has no category id");
        }
        const int cat = category_ids[d.class_id];
        out.push_back({{"image_id", image_id}, {"category_id", cat},
                       {"bbox", {d.x1, d.y1, d.x2 - d.x1, d.y2 - d.y1}}, {"score", score(d.score)}});
        if (!d.mask.data.empty()) {
            out.push_back({{"image_id", image_id}, {"category_id", cat}, {"segmentation", rle_json(d.mask)},
                           {"score", score(d.mask_score)}});
        }
    }
    return out.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

}  // namespace yolact
