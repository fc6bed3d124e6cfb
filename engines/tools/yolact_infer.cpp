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

#include <CLI/CLI.hpp>

#include "yolact/codec.hpp"
#include "yolact/draw.hpp"
#include "yolact/results.hpp"
#include "yolact/tensorrt.hpp"

namespace {

struct Args {
    std::string engine, sidecar, plugins, output, json;
    float score_threshold = 0.15f;
    int top_k = 15, batch = 0, device = 0;
    std::vector<std::string> images;
};

// CLI11; a usage error is one line "error: ..." and exit code 2, as every yolact tool.
Args parse(int argc, char** argv) {
    Args a;
    CLI::App app{"yolact_infer: run a TensorRT engine on image files", "yolact_infer"};
    app.add_option("--engine", a.engine, "engine file (.plan)")->required()->check(CLI::ExistingFile);
    app.add_option("--sidecar", a.sidecar, "sidecar JSON (default: next to the engine)");
    app.add_option("--plugins", a.plugins, "libyolact_plugins.so (plugin-flavour engines)");
    app.add_option("--score-threshold", a.score_threshold, "keep detections scoring above")->check(CLI::Range(0.f, 1.f))->capture_default_str();
    app.add_option("--top-k", a.top_k, "at most this many per image")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--batch", a.batch, "images per batch (default: the engine's max)")->check(CLI::NonNegativeNumber);
    app.add_option("--device", a.device, "CUDA device")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("-o,--output", a.output, "folder for the drawn images");
    app.add_option("--json", a.json, "COCO results file");
    app.add_option("images", a.images, "image files")->required();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        std::exit(0);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "error: %s (yolact_infer --help)\n", e.what());
        std::exit(2);
    }
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
                    yolact::DrawOptions draw;
                    draw.class_names = info.class_names;
                    yolact::write_image(dest, yolact::draw_detections(im.view(), dets, draw).view());
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
