// yolact_infer: run a TensorRT engine on image files; print detections, write drawn images and
// COCO results. Batches are pipelined: batch i+1 is submitted before batch i is post-processed.
//
//   yolact_infer --engine model.plan [--plugins libyolact_plugins.so] [--score-threshold 0.15]
//                [--top-k 15] [--batch N] [--output DIR] [--json results.json] image...
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "yolact/codec.hpp"
#include "yolact/draw.hpp"
#include "yolact/results.hpp"
#include "yolact/tensorrt.hpp"

namespace {

const char* kUsage =
    "usage: yolact_infer --engine FILE.plan [--sidecar FILE.json] [--plugins libyolact_plugins.so]\n"
    "                    [--score-threshold 0.15] [--top-k 15] [--batch N] [--device 0]\n"
    "                    [--output DIR] [--json FILE] image...\n";

struct Args {
    std::string engine, sidecar, plugins, output, json;
    float score_threshold = 0.15f;
    int top_k = 15, batch = 0, device = 0;
    std::vector<std::string> images;
};

[[noreturn]] void usage_error(const std::string& msg) {
    std::fprintf(stderr, "error: %s\n%s", msg.c_str(), kUsage);
    std::exit(2);
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error(k + " needs a value");
            return argv[++i];
        };
        auto number = [&](const std::string& v) {
            char* end = nullptr;
            const double d = std::strtod(v.c_str(), &end);
            if (v.empty() || *end) usage_error(k + " needs a number, got '" + v + "'");
            return d;
        };
        if (k == "-h" || k == "--help") { std::fputs(kUsage, stdout); std::exit(0); }
        else if (k == "--engine") a.engine = value();
        else if (k == "--sidecar") a.sidecar = value();
        else if (k == "--plugins") a.plugins = value();
        else if (k == "--output" || k == "-o") a.output = value();
        else if (k == "--json") a.json = value();
        else if (k == "--score-threshold") a.score_threshold = static_cast<float>(number(value()));
        else if (k == "--top-k") a.top_k = static_cast<int>(number(value()));
        else if (k == "--batch") a.batch = static_cast<int>(number(value()));
        else if (k == "--device") a.device = static_cast<int>(number(value()));
        else if (!k.empty() && k[0] == '-') usage_error("unknown option " + k);
        else a.images.push_back(k);
    }
    if (a.engine.empty()) usage_error("--engine is required");
    if (a.images.empty()) usage_error("no images given");
    return a;
}

std::string base_name(const std::string& p) {
    const size_t s = p.find_last_of('/');
    std::string b = s == std::string::npos ? p : p.substr(s + 1);
    const size_t d = b.find_last_of('.');
    return d == std::string::npos ? b : b.substr(0, d);
}

long long image_id(const std::string& path, long long fallback) {
    const std::string b = base_name(path);
    if (b.empty() || b.size() > 15 || b.find_first_not_of("0123456789") != std::string::npos) return fallback;
    return std::atoll(b.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parse(argc, argv);
    try {
        // Decode everything first: a bad image fails before any work or output.
        std::vector<yolact::Image> images;
        for (const std::string& p : args.images) images.push_back(yolact::read_image(p));

        yolact::EngineOptions opts;
        opts.sidecar = args.sidecar;
        opts.plugin_library = args.plugins;
        opts.device = args.device;
        const auto t0 = std::chrono::steady_clock::now();
        auto engine = yolact::TensorRTEngine::load(args.engine, opts);
        const yolact::EngineInfo& info = engine->info();
        const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "engine: %s (TensorRT %s, %s, input %dx%d, max batch %d, %zu classes) loaded in %.0f ms\n",
                     args.engine.c_str(), info.tensorrt.str().c_str(), info.precision.c_str(),
                     info.geometry.network_height, info.geometry.network_width, info.geometry.max_batch,
                     info.class_names.size(), load_ms);

        const int batch = args.batch > 0 ? std::min(args.batch, info.geometry.max_batch) : info.geometry.max_batch;
        yolact::PostprocessOptions post;
        post.score_threshold = args.score_threshold;
        post.top_k = args.top_k;

        std::string coco = "[";
        auto finish = [&](yolact::TensorRTEngine::Ticket ticket, size_t start, size_t count) {
            const yolact::BatchOutputs out = engine->collect(ticket);
            for (size_t j = 0; j < count; ++j) {
                const size_t i = start + j;
                const yolact::Image& im = images[i];
                const auto dets = yolact::finalize(out.view(static_cast<int>(j)), im.height, im.width, post);
                std::printf("%s: %zu detections", args.images[i].c_str(), dets.size());
                for (const auto& d : dets) {
                    const bool known = d.class_id >= 0 && static_cast<size_t>(d.class_id) < info.class_names.size();
                    std::printf("%s %s %.2f", &d == &dets[0] ? " (" : ",",
                                known ? info.class_names[d.class_id].c_str() : "?", d.mask_score);
                }
                std::printf("%s\n", dets.empty() ? "" : ")");
                if (!args.json.empty()) {
                    const std::string entries = yolact::coco_results_json(dets, image_id(args.images[i], static_cast<long long>(i)),
                                                                          info.category_ids);
                    if (entries.size() > 2) coco += (coco.size() > 1 ? "," : "") + entries.substr(1, entries.size() - 2);
                }
                if (!args.output.empty()) {
                    const std::string dest = args.output + "/" + base_name(args.images[i]) +
                                             (yolact::codec_has_png() ? ".png" : ".ppm");
                    yolact::write_image(dest, yolact::draw_detections(im.view(), dets).view());
                    std::printf("wrote %s\n", dest.c_str());
                }
            }
        };

        // Pipeline: keep one batch in flight while the previous one is post-processed.
        bool pending = false;
        yolact::TensorRTEngine::Ticket ticket = 0;
        size_t pending_start = 0, pending_count = 0;
        for (size_t start = 0; start < images.size(); start += batch) {
            const size_t count = std::min(images.size() - start, static_cast<size_t>(batch));
            std::vector<yolact::ImageView> views;
            for (size_t j = 0; j < count; ++j) views.push_back(images[start + j].view());
            const auto next = engine->submit(views);
            if (pending) finish(ticket, pending_start, pending_count);
            ticket = next;
            pending = true;
            pending_start = start;
            pending_count = count;
        }
        if (pending) finish(ticket, pending_start, pending_count);
        if (!args.json.empty()) {
            std::ofstream f(args.json);
            f << coco << "]\n";
            if (!f) throw yolact::Error("cannot write " + args.json);
            std::printf("wrote %s\n", args.json.c_str());
        }
    } catch (const yolact::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
