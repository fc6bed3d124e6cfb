// The embedding example of docs/serving.md: load an engine, detect, print boxes and COCO RLE masks.
#include <cstdio>

#include "yolact/codec.hpp"     // only to read the example image: the runtime takes BGR buffers
#include "yolact/rle.hpp"
#include "yolact/tensorrt.hpp"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s model.plan image.jpg [libyolact_plugins.so]\n", argv[0]);
        return 2;
    }
    try {
        yolact::EngineOptions options;  // the sidecar model.plan.json is found next to the engine
        if (argc > 3) options.plugin_library = argv[3];
        auto engine = yolact::TensorRTEngine::load(argv[1], options);  // checks TensorRT, GPU, plugins
        const yolact::Image image = yolact::read_image(argv[2]);       // or wrap your own BGR pixels:
        const yolact::ImageView view = image.view();                   // {data, height, width, stride}

        yolact::PostprocessOptions post;
        post.score_threshold = 0.3f;
        const auto results = yolact::detect(*engine, {view}, post);  // batch, run, finalize
        const auto& names = engine->info().class_names;
        for (const yolact::Detection& d : results[0]) {
            const yolact::CocoRle rle = yolact::encode_coco_rle(d.mask);
            std::printf("%s %.2f [%d %d %d %d] %zu px, RLE %s\n", names.at(d.class_id).c_str(), d.score,
                        d.x1, d.y1, d.x2, d.y2, d.mask.area(), rle.counts.substr(0, 24).c_str());
        }
    } catch (const yolact::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
