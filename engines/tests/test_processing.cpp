// C++ pre/post-processing against the Python reference on the bundled real COCO images.
#include <algorithm>
#include <cmath>

#include <doctest/doctest.h>

#include "fixtures.hpp"
#include <opencv2/imgproc.hpp>

#include "yolact/draw.hpp"
#include "yolact/engine_info.hpp"
#include "yolact/postprocess.hpp"
#include "yolact/preprocess.hpp"
#include "yolact/results.hpp"
#include "yolact/rle.hpp"
#include "yolact/sidecar_schema.hpp"

using namespace yolact;
using nlohmann::json;

namespace {

yolact::PostprocessOptions reference_options() {
    PostprocessOptions o;
    o.score_threshold = static_cast<float>(fx::manifest().at("score_threshold").get<double>());
    o.top_k = static_cast<int>(fx::manifest().at("top_k").get<long long>());
    return o;
}

}  // namespace

// Official preprocessing: float bilinear resize to the network size (torch, align_corners=False).
TEST_CASE("fx_preprocess_resize_matches_torch") {
    const int s = static_cast<int>(fx::manifest().at("network_size").get<long long>());
    double worst = 0, worst_u8 = 0;
    for (int i = 0; i < fx::num_images(); ++i) {
        const Image im = fx::image(i);
        const npy::Array ref = fx::array("resized_" + std::to_string(i));
        CHECK_EQ(ref.shape[0], s);
        std::vector<float> out(static_cast<size_t>(s) * s * 3);
        resize_bilinear(im.view(), s, s, out.data());
        const Image u8 = resize_bilinear_u8(im.view(), s, s);
        const float* r = ref.as<float>();
        for (size_t k = 0; k < out.size(); ++k) {
            worst = std::max(worst, static_cast<double>(std::fabs(out[k] - r[k])));
            worst_u8 = std::max(worst_u8, static_cast<double>(std::fabs(u8.data[k] - r[k])));
        }
    }
    std::fprintf(stderr, "  resize: max |C++ - torch| = %.3g (float), %.3g (uint8 feed)\n", worst, worst_u8);
    CHECK_MESSAGE(worst < 1e-3, "float resize differs from torch by " << worst);
    CHECK_MESSAGE(worst_u8 <= 0.5 + 1e-3, "uint8 resize differs from torch by " << worst_u8);
}

// Mask upsampling: cv2.resize(INTER_LINEAR) on float maps, including downscale/identity/1 px.
TEST_CASE("fx_mask_resize_matches_opencv") {
    const int n = static_cast<int>(fx::manifest().at("resize_cases").get<long long>());
    for (int j = 0; j < n; ++j) {
        const npy::Array src = fx::array("rz_" + std::to_string(j) + "_src");
        const npy::Array ref = fx::array("rz_" + std::to_string(j) + "_dst");
        const int dh = static_cast<int>(ref.shape[0]), dw = static_cast<int>(ref.shape[1]);
        std::vector<float> out(static_cast<size_t>(dh) * dw);
        resize_bilinear_map(src.as<float>(), static_cast<int>(src.shape[0]), static_cast<int>(src.shape[1]),
                            out.data(), dh, dw);
        size_t differ = 0;
        for (size_t k = 0; k < out.size(); ++k) differ += out[k] != ref.as<float>()[k];
        std::fprintf(stderr, "  %lldx%lld -> %dx%d: %zu values differ from cv2\n", static_cast<long long>(src.shape[0]),
                     static_cast<long long>(src.shape[1]), dh, dw, differ);
        CHECK_MESSAGE(differ == 0, "case " << j << ": " << differ << " values differ");  // same float operations
    }
}

// Which of our resizes OpenCV's cv::resize (the Debian/JetPack OpenCV the tools link) can replace:
// only where it gives the reference's result. The numbers are the reason each resize is ours or not.
TEST_CASE("fx_opencv_resize_vs_reference") {
    const int s = static_cast<int>(fx::manifest().at("network_size").get<long long>());
    double cv_u8 = 0, cv_f32 = 0, ours_u8 = 0;
    long long cv_u8_off = 0, ours_u8_off = 0;
    for (int i = 0; i < fx::num_images(); ++i) {
        const Image im = fx::image(i);
        const npy::Array ref = fx::array("resized_" + std::to_string(i));
        const float* r = ref.as<float>();
        const cv::Mat src(im.height, im.width, CV_8UC3, const_cast<uint8_t*>(im.data.data()));
        cv::Mat u8, f32, srcf;
        cv::resize(src, u8, cv::Size(s, s), 0, 0, cv::INTER_LINEAR);
        src.convertTo(srcf, CV_32FC3);
        cv::resize(srcf, f32, cv::Size(s, s), 0, 0, cv::INTER_LINEAR);
        const Image mine = resize_bilinear_u8(im.view(), s, s);
        for (size_t k = 0; k < mine.data.size(); ++k) {
            const float want = r[k], want_u8 = std::nearbyint(want);
            cv_u8 = std::max(cv_u8, static_cast<double>(std::fabs(u8.data[k] - want)));
            cv_f32 = std::max(cv_f32, static_cast<double>(std::fabs(reinterpret_cast<const float*>(f32.data)[k] - want)));
            ours_u8 = std::max(ours_u8, static_cast<double>(std::fabs(mine.data[k] - want)));
            cv_u8_off += u8.data[k] != want_u8;
            ours_u8_off += mine.data[k] != want_u8;
        }
    }
    // Upscaling (small images to the network size): ours is torch's float coordinate arithmetic,
    // OpenCV computes the source coordinate in double; compare the two on real pixels.
    double cv_up = 0;
    {
        const Image im = fx::image(0);
        const int h = 77, w = 101, uh = 550, uw = 413;
        const cv::Mat src(im.height, im.width, CV_8UC3, const_cast<uint8_t*>(im.data.data()));
        const Image small = resize_bilinear_u8(im.view(), h, w);
        std::vector<float> mine(static_cast<size_t>(uh) * uw * 3);
        resize_bilinear(small.view(), uh, uw, mine.data());
        cv::Mat smallf, up;
        cv::Mat(h, w, CV_8UC3, const_cast<uint8_t*>(small.data.data())).convertTo(smallf, CV_32FC3);
        cv::resize(smallf, up, cv::Size(uw, uh), 0, 0, cv::INTER_LINEAR);
        for (size_t k = 0; k < mine.size(); ++k) cv_up = std::max(cv_up, static_cast<double>(std::fabs(reinterpret_cast<const float*>(up.data)[k] - mine[k])));
    }
    double mask_worst = 0, mask_vs_ours = 0;
    long long mask_flips = 0;
    const int n = static_cast<int>(fx::manifest().at("resize_cases").get<long long>());
    for (int j = 0; j < n; ++j) {
        const npy::Array src = fx::array("rz_" + std::to_string(j) + "_src"), ref = fx::array("rz_" + std::to_string(j) + "_dst");
        // Two channels (the map twice): OpenCV computes 1, 3 and 4 channel images with other float
        // arithmetic in places (its 2x-downscale average: 1 ulp apart), the reference
        // (yolact_deploy.postprocess.resize_masks) takes the generic path, as here.
        const size_t plane = static_cast<size_t>(src.shape[0]) * static_cast<size_t>(src.shape[1]);
        std::vector<float> two(2 * plane);
        for (size_t k = 0; k < plane; ++k) two[2 * k] = two[2 * k + 1] = src.as<float>()[k];
        cv::Mat out;
        cv::resize(cv::Mat(static_cast<int>(src.shape[0]), static_cast<int>(src.shape[1]), CV_32FC2, two.data()),
                   out, cv::Size(static_cast<int>(ref.shape[1]), static_cast<int>(ref.shape[0])), 0, 0, cv::INTER_LINEAR);
        std::vector<float> ours(out.total());
        resize_bilinear_map(src.as<float>(), static_cast<int>(src.shape[0]), static_cast<int>(src.shape[1]), ours.data(),
                            out.rows, out.cols);
        for (size_t k = 0; k < out.total(); ++k) {
            const float a = reinterpret_cast<const float*>(out.data)[2 * k], b = ref.as<float>()[k];
            mask_vs_ours = std::max(mask_vs_ours, static_cast<double>(std::fabs(a - ours[k])));
            mask_worst = std::max(mask_worst, static_cast<double>(std::fabs(a - b)));
            mask_flips += (a > 0.5f) != (b > 0.5f);
        }
    }
    std::fprintf(stderr,
                 "  image -> %dx%d vs torch: cv::resize uint8 max %.3g (%lld values not torch rounded), ours uint8 max %.3g "
                 "(%lld), cv::resize float32 max %.3g; upscaling 77x101 -> 550x413: cv::resize float32 vs ours (torch) max %.3g\n"
                 "  mask maps vs the Python reference (pip cv2): cv::resize (OpenCV %s) max %.3g, %lld thresholded pixels "
                 "differ; cv::resize vs ours max %.3g\n",
                 s, s, cv_u8, cv_u8_off, ours_u8, ours_u8_off, cv_f32, cv_up, CV_VERSION, mask_worst, mask_flips, mask_vs_ours);
    // Preprocessing must be torch's: OpenCV's fixed-point uint8 path is not, its float path is not when
    // upscaling; ours is (exact in float, the uint8 feed rounds it). So the preprocessing resize stays ours.
    CHECK(ours_u8_off == 0);
    CHECK(cv_u8_off > 0);
    CHECK(cv_up > 1e-4);
    // Masks: our resize_bilinear_map is OpenCV's INTER_LINEAR bit for bit. It stays ours because
    // postprocessing computes masks only inside their boxes, a window cv::resize cannot produce alone.
    CHECK(mask_vs_ours == 0);
    CHECK(mask_flips == 0);
}

TEST_CASE("fx_sanitize_boxes_matches_numpy") {
    const npy::Array boxes = fx::array("syn_boxes");
    const struct { const char* name; int h, w; } cases[] = {{"syn_sanitized_480x640", 480, 640}, {"syn_sanitized_1x3", 1, 3}};
    for (const auto& c : cases) {
        const npy::Array ref = fx::array(c.name);
        for (int64_t i = 0; i < boxes.shape[0]; ++i) {
            int out[4];
            sanitize_box(boxes.as<float>() + i * 4, c.h, c.w, out);
            for (int k = 0; k < 4; ++k) CHECK_EQ(out[k], ref.as<int32_t>()[i * 4 + k]);
        }
    }
}

// finalize on real images: same detections, boxes within 1 px (expected exact), masks identical (both
// compute each mask inside its window with OpenCV's float operations).
TEST_CASE("fx_finalize_matches_python") {
    const PostprocessOptions opts = reference_options();
    double worst_mask = 0;
    long long total_diff = 0, total_px = 0;
    int worst_box = 0, dets_total = 0;
    for (int i = 0; i < fx::num_images(); ++i) {
        const std::string p = "ref_" + std::to_string(i) + "_";
        const Image im = fx::image(i);
        const BatchOutputs c = fx::contract(i);
        const auto dets = finalize(c.view(0), im.height, im.width, opts);
        const npy::Array rb = fx::array(p + "boxes"), rc = fx::array(p + "classes"), rs = fx::array(p + "scores"),
                         rms = fx::array(p + "mask_scores"), rm = fx::array(p + "masks");
        CHECK_EQ(dets.size(), static_cast<size_t>(rb.shape[0]));
        const size_t n = std::min(dets.size(), static_cast<size_t>(rb.shape[0]));
        const size_t plane = static_cast<size_t>(im.height) * im.width;
        for (size_t k = 0; k < n; ++k) {
            const Detection& d = dets[k];
            const int32_t* b = rb.as<int32_t>() + k * 4;
            worst_box = std::max({worst_box, std::abs(d.x1 - b[0]), std::abs(d.y1 - b[1]), std::abs(d.x2 - b[2]),
                                  std::abs(d.y2 - b[3])});
            CHECK_EQ(d.class_id, rc.as<int32_t>()[k]);
            CHECK_EQ(d.score, rs.as<float>()[k]);
            CHECK_EQ(d.mask_score, rms.as<float>()[k]);
            CHECK_EQ(d.mask.height, im.height);
            CHECK_EQ(d.mask.width, im.width);
            const uint8_t* m = rm.as<uint8_t>() + k * plane;
            long long diff = 0;
            for (size_t q = 0; q < plane; ++q) diff += (d.mask.data[q] != 0) != (m[q] != 0);
            worst_mask = std::max(worst_mask, static_cast<double>(diff) / plane);
            total_diff += diff;
            total_px += static_cast<long long>(plane);
        }
        dets_total += static_cast<int>(n);
    }
    std::fprintf(stderr, "  %d detections on %d real images: max box error %d px; mask pixels differing: worst "
                 "mask %.4f%%, overall %lld of %lld (%.5f%%)\n", dets_total, fx::num_images(), worst_box,
                 100 * worst_mask, total_diff, total_px, total_px ? 100.0 * total_diff / total_px : 0.0);
    CHECK(dets_total > 0);
    CHECK_MESSAGE(worst_box <= 1, "box error " << worst_box << " px");
    CHECK_MESSAGE(total_diff == 0, total_diff << " mask pixels differ (worst mask " << 100 * worst_mask << "%)");
}

// COCO RLE: the C++ encoding of the reference masks equals pycocotools' byte for byte.
TEST_CASE("fx_rle_matches_pycocotools") {
    int compared = 0;
    for (int i = 0; i < fx::num_images(); ++i) {
        const std::string p = "ref_" + std::to_string(i) + "_";
        const npy::Array rm = fx::array(p + "masks");
        const std::vector<std::string> lines = fx::read_lines(fx::path(p + "rle.txt"));
        CHECK_EQ(lines.size(), static_cast<size_t>(rm.shape[0]));
        const int h = static_cast<int>(rm.shape[1]), w = static_cast<int>(rm.shape[2]);
        for (size_t k = 0; k < lines.size() && k < static_cast<size_t>(rm.shape[0]); ++k) {
            const uint8_t* m = rm.as<uint8_t>() + k * static_cast<size_t>(h) * w;
            const std::string s = rle_to_string(rle_counts(m, h, w));
            CHECK_EQ(s, lines[k]);
            // And back: the string decodes to the same mask.
            const Mask back = rle_decode(rle_from_string(lines[k]), h, w);
            CHECK(std::equal(back.data.begin(), back.data.end(), m));
            ++compared;
        }
    }
    const int cases = static_cast<int>(fx::manifest().at("rle_cases").get<long long>());
    const std::vector<std::string> lines = fx::read_lines(fx::path("rle_cases.txt"));
    for (int j = 0; j < cases; ++j) {
        const npy::Array m = fx::array("rle_" + std::to_string(j));
        const std::string s = rle_to_string(rle_counts(m.as<uint8_t>(), static_cast<int>(m.shape[0]),
                                                       static_cast<int>(m.shape[1])));
        CHECK_EQ(s, lines[j]);
        ++compared;
    }
    std::fprintf(stderr, "  %d masks: C++ RLE strings identical to pycocotools\n", compared);
}

// The full C++ path (finalize -> RLE) gives pycocotools' strings for the C++ masks too.
TEST_CASE("fx_coco_results_match_python") {
    const PostprocessOptions opts = reference_options();
    std::vector<int> cats;
    for (const auto& v : fx::manifest().at("category_ids")) cats.push_back(v.get<int>());
    int identical = 0, total = 0;
    for (int i = 0; i < fx::num_images(); ++i) {
        const Image im = fx::image(i);
        const auto dets = finalize(fx::contract(i).view(0), im.height, im.width, opts);
        const long long image_id = fx::manifest().at("images")[i].at("image_id").get<long long>();
        const json mine = json::parse(coco_results_json(dets, image_id, cats));
        const json ref = json::parse(fx::read_text(fx::path("ref_" + std::to_string(i) + "_coco.json")));
        CHECK_EQ(mine.size(), ref.size());
        for (size_t k = 0; k < std::min(mine.size(), ref.size()); ++k) {
            const json& a = mine[k];
            const json& b = ref[k];
            CHECK(a.at("category_id") == b.at("category_id"));
            CHECK_EQ(a.at("score").get<double>(), b.at("score").get<double>());
            if (b.contains("bbox")) CHECK_EQ(a.at("bbox").dump(), b.at("bbox").dump());
            if (b.contains("segmentation")) {
                ++total;
                identical += a.at("segmentation").dump() == b.at("segmentation").dump();
            }
        }
    }
    std::fprintf(stderr, "  COCO results: %d of %d segmentations byte-identical to the Python path\n", identical, total);
    CHECK((total > 0 && identical == total));
}

// Drawing: masks blended and 1-px boxes identical to visualize.draw_detections(draw_text=False);
// with labels, identical outside the label boxes (the glyphs depend on the OpenCV major version).
TEST_CASE("fx_draw_matches_python") {
    long long diff = 0, diff_text = 0, diff_outside_labels = 0, total = 0;
    const auto names = fx::manifest().at("class_names").get<std::vector<std::string>>();
    for (int i = 0; i < fx::num_images(); ++i) {
        const std::string p = "ref_" + std::to_string(i) + "_";
        const Image im = fx::image(i);
        // Draw the reference detections (masks from Python) so only the drawing is compared.
        const npy::Array rb = fx::array(p + "boxes"), rms = fx::array(p + "mask_scores"), rm = fx::array(p + "masks"),
                         rc = fx::array(p + "classes");
        std::vector<Detection> dets(static_cast<size_t>(rb.shape[0]));
        const size_t plane = static_cast<size_t>(im.height) * im.width;
        for (size_t k = 0; k < dets.size(); ++k) {
            Detection& d = dets[k];
            d.x1 = rb.as<int32_t>()[k * 4];
            d.y1 = rb.as<int32_t>()[k * 4 + 1];
            d.x2 = rb.as<int32_t>()[k * 4 + 2];
            d.y2 = rb.as<int32_t>()[k * 4 + 3];
            d.class_id = rc.as<int32_t>()[k];
            d.mask_score = rms.as<float>()[k];
            d.mask.height = im.height;
            d.mask.width = im.width;
            d.mask.data.assign(rm.as<uint8_t>() + k * plane, rm.as<uint8_t>() + (k + 1) * plane);
        }
        DrawOptions plain;
        plain.labels = false;
        const Image drawn = draw_detections(im.view(), dets, plain);
        DrawOptions text;
        text.class_names = names;
        const Image drawn_text = draw_detections(im.view(), dets, text);
        // Where a label may be: OpenCV 5 (pip, the Python reference) renders the Hershey fonts with other
        // glyph sizes than OpenCV 4 (Debian), so text pixels are compared only outside the label boxes.
        std::vector<uint8_t> label_area(plane, 0);
        for (const Detection& d : dets) {
            int base = 0;
            const int tw = cv::getTextSize(names[d.class_id] + ": 0.00", cv::FONT_HERSHEY_DUPLEX, 0.5, 1, &base).width;
            const int y = std::max(d.y1, 18);
            for (int yy = std::max(0, y - 22); yy <= std::min(im.height - 1, y + 2); ++yy) {
                for (int xx = std::max(0, std::min(d.x1, im.width - 2 * tw) - 2); xx <= std::min(im.width - 1, d.x1 + 2 * tw); ++xx) {
                    label_area[static_cast<size_t>(yy) * im.width + xx] = 1;
                }
            }
        }
        const npy::Array ref = fx::array(p + "drawn"), ref_text = fx::array(p + "drawn_text");
        for (size_t q = 0; q < drawn.data.size(); ++q) {
            diff += drawn.data[q] != ref.as<uint8_t>()[q];
            const bool differs = drawn_text.data[q] != ref_text.as<uint8_t>()[q];
            diff_text += differs;
            diff_outside_labels += differs && !label_area[q / 3];
        }
        total += static_cast<long long>(drawn.data.size());
    }
    std::fprintf(stderr, "  drawing: %lld of %lld bytes differ without labels; with labels %lld inside the label boxes "
                 "(OpenCV %s here, glyphs differ from OpenCV 5), %lld outside\n", diff, total, diff_text, CV_VERSION,
                 diff_outside_labels);
    CHECK_EQ(diff, 0LL);
    CHECK_EQ(diff_outside_labels, 0LL);
    CHECK(diff_text > 0);  // labels were drawn
}

// The batched entry point: images of different sizes in one contract batch.
TEST_CASE("fx_batch_views") {
    BatchOutputs a = fx::contract(0), b = fx::contract(1);
    BatchOutputs both;
    both.resize(2, a.max_detections, a.proto_height, a.proto_width);
    auto cat = [](auto& dst, const auto& x, const auto& y) {
        std::copy(x.begin(), x.end(), dst.begin());
        std::copy(y.begin(), y.end(), dst.begin() + static_cast<long>(x.size()));
    };
    cat(both.num_detections, a.num_detections, b.num_detections);
    cat(both.boxes, a.boxes, b.boxes);
    cat(both.scores, a.scores, b.scores);
    cat(both.mask_scores, a.mask_scores, b.mask_scores);
    cat(both.classes, a.classes, b.classes);
    cat(both.masks, a.masks, b.masks);
    const Image i0 = fx::image(0), i1 = fx::image(1);
    const PostprocessOptions o = reference_options();
    const auto r1 = finalize(both.view(1), i1.height, i1.width, o);
    const auto s1 = finalize(b.view(0), i1.height, i1.width, o);
    CHECK_EQ(r1.size(), s1.size());
    for (size_t k = 0; k < std::min(r1.size(), s1.size()); ++k) CHECK(r1[k].mask.data == s1[k].mask.data);
    CHECK_THROWS_WITH(both.view(2), doctest::Contains("out of range"));
}

// Sidecars written by yolact_deploy.export.tensorrt_build.make_sidecar parse into the right fields.
TEST_CASE("fx_sidecar_from_python") {
    const json& list = fx::manifest().at("sidecars");
    CHECK(list.size() == 2);
    for (const std::string name : list) {
        const EngineInfo info = load_engine_info(fx::path(name));
        const bool plugins = name.find("plugins") != std::string::npos;
        CHECK_EQ(info.tensorrt.str(), std::string("10.3.0.26"));
        CHECK_EQ(info.compute_capability.str(), std::string("8.7"));
        CHECK_EQ(info.gpu_name, std::string("Orin"));
        CHECK_EQ(info.needs_plugins, plugins);
        CHECK_EQ(info.engine_sha256, std::string(64, 'e'));
        CHECK_EQ(info.geometry.network_height, static_cast<int>(fx::manifest().at("network_size").get<long long>()));
        CHECK(info.geometry.max_batch >= 1);
        CHECK(info.geometry.max_height >= info.geometry.network_height);
        CHECK_EQ(info.max_detections, 100);
        CHECK_EQ(info.class_names.size(), fx::manifest().at("class_names").size());
        CHECK_EQ(info.category_ids.size(), info.class_names.size());
        CHECK_EQ(info.precision, std::string("fp16"));
        if (plugins) {
            CHECK_EQ(info.plugin_library, std::string("libyolact_plugins.so"));
            CHECK_EQ(info.plugin_sha256.size(), 64u);
            CHECK_EQ(info.plugin_sha256.substr(0, 4), std::string("abab"));
            CHECK_EQ(info.plugin_ops.size(), 1u);
        }
        RuntimeEnvironment env;
        env.tensorrt = Version::parse("10.3.0.26");
        env.compute_capability.major = 8;
        env.compute_capability.minor = 7;
        env.plugins_loaded = true;
        CHECK(check_compatibility(info, env).ok());
        std::fprintf(stderr, "  %s: TensorRT %s, cc %s, batch %d..%d, input %dx%d..%dx%d, plugins %s\n",
                     name.c_str(), info.tensorrt.str().c_str(), info.compute_capability.str().c_str(),
                     info.min_batch, info.geometry.max_batch, info.geometry.min_height, info.geometry.min_width,
                     info.geometry.max_height, info.geometry.max_width, info.needs_plugins ? "yes" : "no");
    }
}

// One schema, two validators: the C++ one accepts and rejects exactly the sidecars the Python one
// (jsonschema) does, over a corpus of the real sidecars and edited ones (make_fixtures.py).
TEST_CASE("fx_sidecar_corpus_agrees_with_python") {
    const json& corpus = fx::manifest().at("sidecar_corpus");
    CHECK(corpus.size() > 100);
    int valid = 0, disagree = 0;
    for (const json& entry : corpus) {
        const json doc = json::parse(fx::read_text(fx::path(entry.at("file").get<std::string>())));
        const std::vector<std::string> errors = sidecar_schema_errors(doc);
        const bool python_valid = entry.at("valid").get<bool>();
        valid += python_valid;
        if (errors.empty() != python_valid) {
            ++disagree;
            const std::string py = python_valid ? "valid" : "invalid", cpp = errors.empty() ? "valid" : errors[0];
            MESSAGE(entry.at("file").get<std::string>() << " (" << entry.at("edit").get<std::string>() << "): Python says "
                    << py << ", C++ " << cpp);
        }
    }
    std::fprintf(stderr, "  sidecar corpus: %zu documents, %d valid; C++ and Python disagree on %d\n", corpus.size(), valid, disagree);
    CHECK_EQ(disagree, 0);
    CHECK(valid > 2);
    CHECK(valid < static_cast<int>(corpus.size()) - 40);
}
