#include "yolact/types.hpp"

#include <algorithm>
#include <string>

namespace yolact {

size_t Mask::area() const {
    return static_cast<size_t>(std::count_if(data.begin(), data.end(), [](uint8_t v) { return v != 0; }));
}

void BatchOutputs::resize(int b, int k, int hp, int wp) {
    if (b < 0 || k < 0 || hp < 0 || wp < 0) throw Error("BatchOutputs: negative shape");
    batch = b;
    max_detections = k;
    proto_height = hp;
    proto_width = wp;
    const size_t bk = static_cast<size_t>(b) * k;
    num_detections.assign(b, 0);
    boxes.assign(bk * 4, 0.f);
    scores.assign(bk, 0.f);
    mask_scores.assign(bk, 0.f);
    classes.assign(bk, -1);
    masks.assign(bk * hp * wp, 0.f);
}

ContractView BatchOutputs::view(int b) const {
    if (b < 0 || b >= batch) {
        throw Error("BatchOutputs: image " + std::to_string(b) + " out of range (batch " +
                    std::to_string(batch) + ")");
    }
    const size_t k = static_cast<size_t>(max_detections);
    const size_t plane = static_cast<size_t>(proto_height) * proto_width;
    const size_t bk = static_cast<size_t>(batch) * k;
    if (num_detections.size() != static_cast<size_t>(batch) || boxes.size() != bk * 4 ||
        scores.size() != bk || classes.size() != bk || masks.size() != bk * plane ||
        (!mask_scores.empty() && mask_scores.size() != bk)) {
        throw Error("BatchOutputs: buffer sizes do not match [B=" + std::to_string(batch) +
                    ", K=" + std::to_string(max_detections) + ", Hp=" + std::to_string(proto_height) +
                    ", Wp=" + std::to_string(proto_width) + "]");
    }
    ContractView v;
    v.num_detections = num_detections[b];
    v.max_detections = max_detections;
    v.proto_height = proto_height;
    v.proto_width = proto_width;
    v.boxes = boxes.data() + b * k * 4;
    v.scores = scores.data() + b * k;
    v.mask_scores = mask_scores.empty() ? nullptr : mask_scores.data() + b * k;
    v.classes = classes.data() + b * k;
    v.masks = masks.data() + b * k * plane;
    return v;
}

}  // namespace yolact
