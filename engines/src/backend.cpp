#include "yolact/backend.hpp"

#include <algorithm>
#include <string>

namespace yolact {

std::vector<std::vector<Detection>> detect(Backend& backend, const std::vector<ImageView>& images,
                                           const PostprocessOptions& options) {
    const int max_batch = std::max(1, backend.info().geometry.max_batch);
    std::vector<std::vector<Detection>> results;
    results.reserve(images.size());
    for (size_t start = 0; start < images.size(); start += max_batch) {
        const size_t end = std::min(images.size(), start + static_cast<size_t>(max_batch));
        const std::vector<ImageView> chunk(images.begin() + start, images.begin() + end);
        const BatchOutputs out = backend.run(chunk);
        if (out.batch != static_cast<int>(chunk.size())) {
            throw Error("backend returned " + std::to_string(out.batch) + " results for " +
                        std::to_string(chunk.size()) + " images");
        }
        for (size_t i = 0; i < chunk.size(); ++i) {
            results.push_back(finalize(out.view(static_cast<int>(i)), chunk[i].height, chunk[i].width, options));
        }
    }
    return results;
}

}  // namespace yolact
