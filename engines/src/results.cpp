#include "yolact/results.hpp"

#include "yolact/json.hpp"
#include "yolact/rle.hpp"

namespace yolact {
namespace {

void append_int(std::string& out, long long v) { out += std::to_string(v); }

// Scores as float32 -> shortest decimal of the float (what Python's float(np.float32) then json
// would print is the double expansion; the value round-trips to the same float32 either way).
void append_score(std::string& out, float v) { json::append_number(out, static_cast<double>(v)); }

}  // namespace

std::string image_result_json(const std::vector<Detection>& dets, int height, int width,
                              const std::vector<std::string>& class_names,
                              const std::vector<int>& category_ids, const ResultFormat& format) {
    std::string out = "{\"width\":";
    append_int(out, width);
    out += ",\"height\":";
    append_int(out, height);
    out += ",\"detections\":[";
    for (size_t i = 0; i < dets.size(); ++i) {
        const Detection& d = dets[i];
        if (i) out.push_back(',');
        const bool known = d.class_id >= 0 && static_cast<size_t>(d.class_id) < class_names.size();
        out += "{\"class_id\":";
        append_int(out, d.class_id);
        out += ",\"category_id\":";
        const bool has_cat = d.class_id >= 0 && static_cast<size_t>(d.class_id) < category_ids.size();
        if (has_cat) append_int(out, category_ids[d.class_id]); else out += "null";
        out += ",\"label\":";
        json::append_quoted(out, known ? class_names[d.class_id] : std::to_string(d.class_id));
        out += ",\"score\":";
        append_score(out, d.score);
        out += ",\"mask_score\":";
        append_score(out, d.mask_score);
        out += ",\"box\":[";
        append_int(out, d.x1); out.push_back(',');
        append_int(out, d.y1); out.push_back(',');
        append_int(out, d.x2); out.push_back(',');
        append_int(out, d.y2);
        out += "],\"bbox\":[";
        append_int(out, d.x1); out.push_back(',');
        append_int(out, d.y1); out.push_back(',');
        append_int(out, static_cast<long long>(d.x2) - d.x1); out.push_back(',');
        append_int(out, static_cast<long long>(d.y2) - d.y1);
        out += "]";
        if (format.masks && !d.mask.data.empty()) {
            const CocoRle rle = encode_coco_rle(d.mask);
            out += ",\"mask\":{\"size\":[";
            append_int(out, rle.height);
            out.push_back(',');
            append_int(out, rle.width);
            out += "],\"counts\":";
            json::append_quoted(out, rle.counts);
            out += "}";
        }
        out += "}";
    }
    out += "]}";
    return out;
}

std::string coco_results_json(const std::vector<Detection>& dets, long long image_id,
                              const std::vector<int>& category_ids) {
    std::string out = "[";
    bool first = true;
    for (const Detection& d : dets) {
        if (static_cast<long long>(d.x2 - d.x1) * (d.y2 - d.y1) <= 0) continue;
        if (d.class_id < 0 || static_cast<size_t>(d.class_id) >= category_ids.size()) {
            throw Error("coco_results_json: class id " + std::to_string(d.class_id) + " has no category id");
        }
        const int cat = category_ids[d.class_id];
        if (!first) out.push_back(',');
        first = false;
        out += "{\"image_id\":" + std::to_string(image_id) + ",\"category_id\":" + std::to_string(cat) +
               ",\"bbox\":[" + std::to_string(d.x1) + "," + std::to_string(d.y1) + "," +
               std::to_string(d.x2 - d.x1) + "," + std::to_string(d.y2 - d.y1) + "],\"score\":";
        append_score(out, d.score);
        out += "}";
        if (!d.mask.data.empty()) {
            const CocoRle rle = encode_coco_rle(d.mask);
            out += ",{\"image_id\":" + std::to_string(image_id) + ",\"category_id\":" + std::to_string(cat) +
                   ",\"segmentation\":{\"size\":[" + std::to_string(rle.height) + "," +
                   std::to_string(rle.width) + "],\"counts\":";
            json::append_quoted(out, rle.counts);
            out += "},\"score\":";
            append_score(out, d.mask_score);
            out += "}";
        }
    }
    out += "]";
    return out;
}

}  // namespace yolact
