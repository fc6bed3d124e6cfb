// The inference backend interface: images in, engine-contract outputs out. The TensorRT engine
// implements it; services and tools are written against it, and tests replay recorded outputs.
#pragma once

#include <vector>

#include "yolact/engine_info.hpp"
#include "yolact/postprocess.hpp"
#include "yolact/types.hpp"

namespace yolact {

class Backend {
public:
    virtual ~Backend() = default;
    virtual const EngineInfo& info() const = 0;
    // One batch of at most info().geometry.max_batch images -> host contract outputs.
    virtual BatchOutputs run(const std::vector<ImageView>& images) = 0;
};

// Any number of images: split into batches the backend accepts, run, and finalize each image at
// its own size. Returns one detection list per image, in order.
std::vector<std::vector<Detection>> detect(Backend& backend, const std::vector<ImageView>& images,
                                           const PostprocessOptions& options = {});

}  // namespace yolact
