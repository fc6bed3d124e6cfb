// Unit tests without fixtures: JSON limits, the sidecar schema and parsing, compatibility checks (no
// GPU needed), input planning, RLE round trips, image codecs, SHA-256.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "yolact/codec.hpp"
#include "yolact/engine_info.hpp"
#include "yolact/postprocess.hpp"
#include "yolact/preprocess.hpp"
#include "yolact/rle.hpp"
#include "yolact/sha256.hpp"
#include "yolact/sidecar_schema.hpp"

using namespace yolact;
using nlohmann::json;

// ---- JSON -----------------------------------------------------------------------------------------
TEST_CASE("json_limits") {
    CHECK(parse_json("[[[1]]]", "t", 3) == json::parse("[[[1]]]"));
    CHECK_THROWS_WITH(parse_json(std::string(1000, '['), "t"), doctest::Contains("t: invalid JSON: nesting deeper than 64"));
    CHECK_THROWS_WITH(parse_json("{\"a\" 1}", "t"), doctest::Contains("t: invalid JSON"));
    CHECK_THROWS_WITH(parse_json("\"\\ud800\"", "t"), doctest::Contains("invalid JSON"));
}

// ---- sidecar + compatibility ----------------------------------------------------------------------
namespace {

// The layout yolact-export --to trt writes (yolact_deploy/export/tensorrt_build.py make_sidecar);
// the fixture test fx_sidecar_from_python parses files written by that very function.
const char* kSidecar = R"({
  "schema": 1, "kind": "yolact_deploy.tensorrt_engine", "engine": "m.plan",
  "engine_sha256": "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "tensorrt_version": "10.3.0.26",
  "gpu": {"index": 0, "name": "Orin", "compute_capability": "8.7"},
  "precision": "fp16", "strongly_typed": true, "builder_flags": [],
  "profiles": [{"input": "images", "min": [1, 64, 64, 3], "opt": [4, 550, 550, 3], "max": [8, 1080, 1920, 3]}],
  "plugin_library": {"file": "libyolact_plugins.so", "path": "/opt/yd/libyolact_plugins.so",
                     "sha256": "abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd",
                     "ops": ["YolactFastNMS", "YolactDeformIm2col"], "version": "1", "namespace": ""},
  "io_tensors": [],
  "model": {"graph": "end_to_end", "preset": "yolact_base", "precision": "fp16", "flavour": "plugins",
            "class_names": ["person", "car"], "category_ids": [1, 3],
            "input": {"network_size": [550, 550]}, "proto_size": [138, 138], "max_detections": 100,
            "mask_rescoring": false}
})";

RuntimeEnvironment orin() {
    RuntimeEnvironment env;
    env.tensorrt = Version::parse("10.3.0.26");
    env.compute_capability = {8, 7};
    env.gpu_name = "Orin";
    env.plugins_loaded = true;
    return env;
}

}  // namespace

TEST_CASE("sidecar_parse") {
    const EngineInfo info = parse_engine_info(kSidecar, "engine.json");
    CHECK_EQ(info.tensorrt.str(), std::string("10.3.0.26"));
    CHECK_EQ(info.compute_capability.str(), std::string("8.7"));
    CHECK(info.needs_plugins);
    CHECK_EQ(info.geometry.max_batch, 8);
    CHECK_EQ(info.opt_batch, 4);
    CHECK_EQ(info.geometry.max_width, 1920);
    CHECK_EQ(info.geometry.network_height, 550);
    CHECK_EQ(info.proto_height, 138);
    CHECK_EQ(info.class_names.size(), 2u);
    CHECK_EQ(info.category_ids[1], 3);
    CHECK_EQ(info.precision, std::string("fp16"));
    CHECK_EQ(info.engine_sha256, std::string(64, 'e'));
    CHECK_EQ(info.plugin_sha256.substr(0, 8), std::string("abcdabcd"));
    CHECK_EQ(info.plugin_path, std::string("/opt/yd/libyolact_plugins.so"));
    CHECK_EQ(info.plugin_ops.size(), 2u);
    CHECK(check_compatibility(info, orin()).ok());
    // "plugin_library": null -> a portable engine.
    std::string portable = kSidecar;
    const size_t a = portable.find("\"plugin_library\": {"), b = portable.find("},", a);
    portable.replace(a, b + 1 - a, "\"plugin_library\": null");
    const EngineInfo p = parse_engine_info(portable, "portable.json");
    CHECK(!p.needs_plugins);
    CHECK(p.plugin_library.empty());
}

TEST_CASE("sha256_known_vectors") {
    CHECK_EQ(sha256_hex("", 0), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK_EQ(sha256_hex("abc", 3), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const std::string m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK_EQ(sha256_hex(m.data(), m.size()), std::string("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    CHECK_THROWS_WITH(sha256_file("/nonexistent/lib.so"), doctest::Contains("cannot read /nonexistent/lib.so"));
}

TEST_CASE("sidecar_compute_capability") {
    CHECK_EQ(ComputeCapability::parse("sm_87").str(), std::string("8.7"));
    CHECK_EQ(ComputeCapability::parse("sm_110").str(), std::string("11.0"));
    CHECK_EQ(ComputeCapability::parse("8.6").str(), std::string("8.6"));
    CHECK_EQ(ComputeCapability::parse("12.0").str(), std::string("12.0"));
    for (const char* bad : {"8", "8.", ".7", "8.77", "eight", "sm_8", "0.5", "8.7.1"}) {
        CHECK_THROWS_WITH(ComputeCapability::parse(bad), doctest::Contains("invalid compute capability"));
    }
}

// The validator implements the schema keywords it claims, with jsonschema's semantics.
TEST_CASE("sidecar_schema_keywords") {
    const json schema = json::parse(R"({"type": "object", "required": ["a"], "properties": {
        "a": {"type": "integer", "minimum": 1, "maximum": 3},
        "b": {"type": ["string", "null"], "pattern": "^x+$", "minLength": 2},
        "c": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"enum": ["p", "q"]}},
        "d": {"const": "k"}, "e": {"$ref": "#/$defs/n"}}, "$defs": {"n": {"type": "number"}}})");
    CHECK(schema_errors(schema, json::parse(R"({"a": 2, "b": "xx", "c": ["p"], "d": "k", "e": 1.5})")).empty());
    CHECK(schema_errors(schema, json::parse(R"({"a": 2.0, "b": null})")).empty());  // 2.0 is an integer
    CHECK(schema_errors(schema, json::parse(R"({"a": 1, "b": "xx\n"})")).empty());  // Python's re '$'
    const auto one = [&](const char* doc) {
        const auto e = schema_errors(schema, json::parse(doc));
        return e.size() == 1 ? e[0] : std::string("errors: ") + std::to_string(e.size());
    };
    CHECK_EQ(one(R"({})"), std::string("/: 'a' is a required property"));
    CHECK_EQ(one(R"({"a": true})"), std::string("/a: true is not of type integer"));
    CHECK_EQ(one(R"({"a": 4})"), std::string("/a: 4 is greater than 3"));
    CHECK_EQ(one(R"({"a": 0})"), std::string("/a: 0 is less than 1"));
    CHECK_EQ(one(R"({"a": 1, "b": "x"})"), std::string("/b: string is too short"));
    CHECK_EQ(one(R"({"a": 1, "b": "xy"})"), std::string("/b: \"xy\" does not match \"^x+$\""));
    CHECK_EQ(one(R"({"a": 1, "c": []})"), std::string("/c: has fewer than 1 items"));
    CHECK_EQ(one(R"({"a": 1, "c": ["p", "q", "p"]})"), std::string("/c: has more than 2 items"));
    CHECK_EQ(one(R"({"a": 1, "c": ["r"]})"), std::string("/c/0: \"r\" is not one of [\"p\",\"q\"]"));
    CHECK_EQ(one(R"({"a": 1, "d": "j"})"), std::string("/d: must be \"k\""));
    CHECK_EQ(one(R"({"a": 1, "e": "1"})"), std::string("/e: \"1\" is not of type number"));
    // A keyword the validator does not implement is refused, not ignored.
    CHECK_THROWS_WITH(schema_errors(json::parse(R"({"properties": {"a": {"oneOf": []}}})"), json::object()),
                      doctest::Contains("schema keyword 'oneOf' at #/properties/a is not supported"));
    CHECK(sidecar_schema().at("title") == "yolact-deploy TensorRT engine sidecar");
}

TEST_CASE("sidecar_errors_are_clear") {
    const json good = json::parse(kSidecar);
    const auto with = [&](const char* pointer, const json& value) {
        json j = good;
        if (value.is_discarded()) j.erase(json::json_pointer(pointer).back()); else j[json::json_pointer(pointer)] = value;
        return j.dump();
    };
    const json gone = json(json::value_t::discarded);
    CHECK_THROWS_WITH(parse_engine_info("{}", "e.json"), doctest::Contains("e.json: does not follow the engine sidecar schema: /: 'schema' is a required property (and 9 more)"));
    CHECK_THROWS_WITH(parse_engine_info(with("/tensorrt_version", gone), "e"), doctest::Contains("/: 'tensorrt_version' is a required property"));
    CHECK_THROWS_WITH(parse_engine_info(with("/tensorrt_version", "ten"), "e"), doctest::Contains("/tensorrt_version: \"ten\" does not match"));
    CHECK_THROWS_WITH(parse_engine_info(with("/gpu/compute_capability", "eight"), "e"), doctest::Contains("/gpu/compute_capability: \"eight\" does not match"));
    CHECK_THROWS_WITH(parse_engine_info(with("/model/graph", "raw"), "e"), doctest::Contains("e: this is a raw-graph engine"));
    CHECK_THROWS_WITH(parse_engine_info(R"({"schema": 7})", "e"), doctest::Contains("newer than this runtime"));
    CHECK_THROWS_WITH(parse_engine_info(with("/profiles/0/max/0", 0), "e"), doctest::Contains("/profiles/0/max/0: 0 is less than 1"));
    CHECK_THROWS_WITH(parse_engine_info(with("/profiles/0/min/0", 9), "e"), doctest::Contains("e: invalid batch profile"));
    CHECK_THROWS_WITH(parse_engine_info(with("/profiles/0/max/3", 4), "e"), doctest::Contains("profile max must be [B, H, W, 3]"));
    CHECK_THROWS_WITH(parse_engine_info(with("/model/category_ids", {1}), "e"), doctest::Contains("category_ids and class_names differ"));
    CHECK_THROWS_WITH(parse_engine_info(with("/profiles/0/input", "x"), "e"), doctest::Contains("no entry for the input 'images'"));
    CHECK_THROWS_WITH(parse_engine_info("[1]", "e"), doctest::Contains("must be a JSON object"));
    CHECK_THROWS_WITH(parse_engine_info("{", "e.json"), doctest::Contains("e.json: invalid JSON"));
    CHECK_THROWS_WITH(find_sidecar("/nonexistent/model.plan"), doctest::Contains("looked for /nonexistent/model.plan.json or /nonexistent/model.json"));
}

TEST_CASE("compat_tensorrt_version") {
    const EngineInfo info = parse_engine_info(kSidecar, "engine.json");
    RuntimeEnvironment env = orin();
    env.tensorrt = Version::parse("10.3.0.30");
    Compatibility c = check_compatibility(info, env);
    CHECK(!c.ok());
    CHECK(c.message().find("built with TensorRT 10.3.0.26, this process has 10.3.0.30") != std::string::npos);
    env.tensorrt = Version::parse("11.1.0");
    CHECK(!check_compatibility(info, env).ok());
    env.tensorrt = Version::parse("10.3.0");  // build number unknown: major.minor.patch decide
    CHECK(check_compatibility(info, env).ok());
    // Version-compatible engines run on later releases of the same major only.
    EngineInfo vc = info;
    vc.version_compatible = true;
    env.tensorrt = Version::parse("10.8.0");
    CHECK(check_compatibility(vc, env).ok());
    env.tensorrt = Version::parse("10.2.0");
    CHECK(!check_compatibility(vc, env).ok());
    env.tensorrt = Version::parse("11.0.0");
    CHECK(!check_compatibility(vc, env).ok());
    env.tensorrt = Version();
    CHECK(check_compatibility(info, env).message().find("unknown") != std::string::npos);
}

TEST_CASE("compat_gpu_and_plugins") {
    const EngineInfo info = parse_engine_info(kSidecar, "engine.json");
    RuntimeEnvironment env = orin();
    env.compute_capability = {9, 0};
    env.gpu_name = "NVIDIA H100";
    Compatibility c = check_compatibility(info, env);
    CHECK(c.message().find("compute capability 8.7 (Orin), this GPU is 9.0 (NVIDIA H100)") != std::string::npos);
    env = orin();
    env.compute_capability = ComputeCapability();
    CHECK(check_compatibility(info, env).message().find("no CUDA GPU") != std::string::npos);
    env = orin();
    env.gpu_name = "Orin Nano";  // same capability, other model: a warning only
    c = check_compatibility(info, env);
    CHECK(c.ok());
    CHECK_EQ(c.warnings.size(), 1u);
    EngineInfo amp = info;
    amp.hardware_compatibility = "ampere_plus";
    env.compute_capability = {9, 0};
    CHECK(check_compatibility(amp, env).ok());
    env.compute_capability = {7, 5};
    CHECK(!check_compatibility(amp, env).ok());
    env = orin();
    env.plugins_loaded = false;
    c = check_compatibility(info, env);
    CHECK(c.message().find("plugins (YolactFastNMS, YolactDeformIm2col): load libyolact_plugins.so (built for TensorRT 10.x) first") != std::string::npos);
    CHECK_THROWS_WITH(require_compatible(info, env), doctest::Contains("engine.json: engine uses the yolact TensorRT plugins ("));
}

// ---- preprocessing plan ---------------------------------------------------------------------------
TEST_CASE("plan_input_rules") {
    InputGeometry g;
    g.network_height = g.network_width = 550;
    g.min_height = g.min_width = 64;
    g.max_height = g.max_width = 1024;
    g.max_batch = 2;
    Image a(480, 640), b(480, 640), c(300, 200), big(2000, 100);
    InputPlan p = plan_input({a.view(), b.view()}, g);
    CHECK(!p.resized);
    CHECK_EQ(p.height, 480);
    p = plan_input({a.view(), c.view()}, g);  // mixed sizes: resize to the network size
    CHECK(p.resized);
    CHECK_EQ(p.width, 550);
    CHECK(plan_input({big.view()}, g).resized);  // outside the profile
    CHECK_THROWS_WITH(plan_input({a.view(), b.view(), c.view()}, g), doctest::Contains("exceeds the engine's batch profile (max 2)"));
    CHECK_THROWS_WITH(plan_input({}, g), doctest::Contains("empty batch"));
    CHECK_THROWS_WITH(plan_input({ImageView{}}, g), doctest::Contains("empty image"));
    g.max_height = 500;
    CHECK_THROWS_WITH(plan_input({big.view()}, g), doctest::Contains("outside the engine's input profile"));
    // pack_input: exact copy for same-size, resize otherwise; an identity resize is exact.
    g.max_height = 1024;
    a.data[5] = 77;
    std::vector<uint8_t> buf(2 * 480 * 640 * 3);
    pack_input({a.view(), b.view()}, plan_input({a.view(), b.view()}, g), buf.data());
    CHECK_EQ(static_cast<int>(buf[5]), 77);
    const Image same = resize_bilinear_u8(a.view(), 480, 640);
    CHECK(same.data == a.data);
}

TEST_CASE("finalize_edge_cases") {
    // num_detections out of range is clamped; NaN boxes become 0; threshold is strict; top_k.
    const int k = 3;
    std::vector<float> boxes = {0.1f, 0.1f, 0.5f, 0.5f, NAN, 0.2f, 0.3f, 0.4f, 0, 0, 1, 1};
    std::vector<float> scores = {0.9f, 0.5f, 0.5f};
    std::vector<int32_t> classes = {1, 2, 3};
    std::vector<float> masks(static_cast<size_t>(k) * 4 * 4, 1.f);
    ContractView v;
    v.num_detections = 99;
    v.max_detections = k;
    v.proto_height = v.proto_width = 4;
    v.boxes = boxes.data();
    v.scores = scores.data();
    v.classes = classes.data();
    v.masks = masks.data();
    PostprocessOptions o;
    o.score_threshold = 0.5f;
    auto d = finalize(v, 10, 20, o);
    CHECK_EQ(d.size(), 1u);
    o.score_threshold = 0.f;
    d = finalize(v, 10, 20, o);
    CHECK_EQ(d.size(), 3u);
    CHECK_EQ(d[1].x1, 0);  // NaN x1
    CHECK_EQ(d[0].mask_score, 0.9f);  // no mask_scores: the box score
    CHECK_EQ(d[2].mask.area(), 200u);
    o.top_k = 2;
    CHECK_EQ(finalize(v, 10, 20, o).size(), 2u);
    o.top_k = 0;
    CHECK_EQ(finalize(v, 10, 20, o).size(), 0u);
    v.num_detections = -5;
    CHECK_EQ(finalize(v, 10, 20, {}).size(), 0u);
    CHECK_THROWS_WITH(finalize(v, 0, 20, {}), doctest::Contains("image size must be positive"));
}

namespace {

// Column-major runs over the whole mask, pixel by pixel: the plain definition of COCO RLE counts.
std::vector<uint32_t> naive_rle(const Mask& m) {
    std::vector<uint32_t> counts;
    uint8_t cur = 0;
    uint32_t run = 0;
    for (int x = 0; x < m.width; ++x) {
        for (int y = 0; y < m.height; ++y) {
            const uint8_t v = m.at(y, x) ? 1 : 0;
            if (v != cur) {
                counts.push_back(run);
                run = 0;
                cur = v;
            }
            ++run;
        }
    }
    counts.push_back(run);
    return counts;
}

// Prototype-resolution maps as the model makes them: probabilities zeroed outside a box (the
// official crop), for boxes at and beyond the borders, 1-pixel, empty and whole-image boxes, many
// random overlapping ones; plus all-zero, all-0.5 (at the threshold) and single-pixel maps.
std::vector<float> adversarial_maps(std::mt19937& rng, int n, int ph, int pw) {
    std::uniform_real_distribution<float> u(0.f, 1.f), pos(-0.2f, 1.2f);
    std::vector<float> maps(static_cast<size_t>(n) * ph * pw, 0.f);
    const float special[][4] = {{0, 0, 1, 1}, {-0.5f, -0.5f, 0.02f, 0.03f}, {0.97f, 0.98f, 1.6f, 1.3f},
                                {-1, -1, -0.5f, -0.2f}, {1.2f, 0.1f, 1.5f, 0.3f}, {0.5f, 0.5f, 0.5f, 0.5f},
                                {0, 0, 0.01f, 1}, {0, 0.999f, 1, 1}};
    for (int i = 0; i < n; ++i) {
        float b[4];
        for (int k = 0; k < 4; ++k) b[k] = i < 8 ? special[i][k] : pos(rng);
        const int x1 = std::max(0, static_cast<int>(std::floor(std::min(b[0], b[2]) * pw)));
        const int x2 = std::min(pw, std::max(static_cast<int>(std::ceil(std::max(b[0], b[2]) * pw)), x1 + (i == 5)));
        const int y1 = std::max(0, static_cast<int>(std::floor(std::min(b[1], b[3]) * ph)));
        const int y2 = std::min(ph, std::max(static_cast<int>(std::ceil(std::max(b[1], b[3]) * ph)), y1 + (i == 5)));
        float* m = maps.data() + static_cast<size_t>(i) * ph * pw;
        for (int y = y1; y < y2; ++y)
            for (int x = x1; x < x2; ++x) m[static_cast<size_t>(y) * pw + x] = u(rng);
    }
    float* last = maps.data() + static_cast<size_t>(n - 3) * ph * pw;
    std::fill(last, last + ph * pw, 0.f);
    std::fill(last + ph * pw, last + 2 * ph * pw, 0.5f);
    std::fill(last + 2 * ph * pw, last + 3 * ph * pw, 0.f);
    last[2 * ph * pw + (ph / 2) * pw + pw / 3] = 1.f;
    return maps;
}

}  // namespace

// Masks computed in their windows only == the full-image resize thresholded, bit for bit; RLE from
// the crop == RLE of the full mask.
TEST_CASE("finalize_mask_crop_matches_full_image_resize") {
    const struct { int ph, pw, h, w; } cases[] = {
        {32, 32, 480, 640}, {24, 20, 61, 333}, {32, 32, 32, 32}, {32, 32, 13, 9},
        {32, 32, 16, 16}, {32, 32, 16, 17}, {32, 32, 1, 1}, {5, 7, 300, 2}};
    std::mt19937 rng(3);
    int masks = 0, nonempty = 0;
    for (const auto& c : cases) {
        const int n = 30;
        const std::vector<float> maps = adversarial_maps(rng, n, c.ph, c.pw);
        std::vector<float> full(static_cast<size_t>(c.h) * c.w);
        for (int i = 0; i < n; ++i) {
            const float* m = maps.data() + static_cast<size_t>(i) * c.ph * c.pw;
            resize_bilinear_map(m, c.ph, c.pw, full.data(), c.h, c.w);
            const MaskCrop crop = upsample_mask_crop(m, c.ph, c.pw, c.h, c.w);
            const Mask dense = crop.dense();
            size_t diff = 0;
            for (size_t q = 0; q < full.size(); ++q) diff += (full[q] > 0.5f) != (dense.data[q] != 0);
            CHECK_MESSAGE(diff == 0, c.ph << "x" << c.pw << " -> " << c.h << "x" << c.w << " mask " << i << ": "
                                      << diff << " pixels differ");
            CHECK(crop.data.size() <= full.size());
            CHECK_EQ(crop.area(), dense.area());
            CHECK(rle_counts(crop) == naive_rle(dense));
            CHECK(rle_counts(dense) == naive_rle(dense));
            CHECK(upsample_mask(m, c.ph, c.pw, c.h, c.w).data == dense.data);
            ++masks;
            nonempty += crop.area() > 0;
        }
    }
    CHECK(nonempty > masks / 2);
    // The exact 2x downscale is OpenCV's 2x2 average, not the bilinear formula.
    const float src[4] = {0.1f, 0.7f, 0.3f, 0.9f};
    float out = 0;
    resize_bilinear_map(src, 2, 2, &out, 1, 1);
    CHECK_EQ(out, (((0.1f + 0.7f) + 0.3f) + 0.9f) * 0.25f);
}

TEST_CASE("rle_from_crop_edge_cases") {
    // Runs that cross columns (a full-height box), start and end with set pixels, empty masks.
    for (int t = 0; t < 4; ++t) {
        MaskCrop c;
        c.image_height = 6;
        c.image_width = 5;
        c.top = t == 1 ? 2 : 0;
        c.left = t == 2 ? 0 : 1;
        c.height = t == 3 ? 0 : c.image_height - c.top;
        c.width = t == 3 ? 0 : c.image_width - c.left;
        c.data.assign(static_cast<size_t>(c.height) * c.width, 1);
        if (t == 2) c.data[3] = 0;
        CHECK(rle_counts(c) == naive_rle(c.dense()));
        CHECK_EQ(encode_coco_rle(c).counts, encode_coco_rle(c.dense()).counts);
    }
    MaskCrop none;  // an empty image
    CHECK(rle_counts(none) == std::vector<uint32_t>{0});
}

// ---- RLE ------------------------------------------------------------------------------------------
TEST_CASE("rle_round_trip_random") {
    std::mt19937 rng(1);
    for (int t = 0; t < 200; ++t) {
        const int h = 1 + static_cast<int>(rng() % 40), w = 1 + static_cast<int>(rng() % 40);
        const double p = (rng() % 100) / 100.0;
        Mask m;
        m.height = h;
        m.width = w;
        for (int i = 0; i < h * w; ++i) m.data.push_back((rng() % 1000) < p * 1000 ? 1 : 0);
        const std::vector<uint32_t> counts = rle_counts(m);
        uint64_t sum = 0;
        for (uint32_t c : counts) sum += c;
        CHECK_EQ(sum, static_cast<uint64_t>(h) * w);
        const std::string s = rle_to_string(counts);
        CHECK(rle_from_string(s) == counts);
        CHECK(rle_decode(counts, h, w).data == m.data);
    }
    // Large runs and differences (multi-group numbers, negative deltas).
    const std::vector<uint32_t> big = {0, 5000000, 3, 1, 4000000, 2};
    CHECK(rle_from_string(rle_to_string(big)) == big);
    CHECK_THROWS_WITH(rle_from_string("\x7f"), doctest::Contains("invalid character"));
    CHECK_THROWS_WITH(rle_from_string("P"), doctest::Contains("ends inside a number"));
    CHECK_THROWS_WITH(rle_decode({3, 4}, 2, 2), doctest::Contains("exceed the mask size"));
    CHECK_THROWS_WITH(rle_decode({1, 1}, 2, 2), doctest::Contains("do not cover"));
}

// ---- codecs ---------------------------------------------------------------------------------------
TEST_CASE("codec_errors") {
    const std::string junk = "this is not an image at all";
    CHECK_THROWS_WITH(decode_image(reinterpret_cast<const uint8_t*>(junk.data()), junk.size()), doctest::Contains("not an image"));
    CHECK_THROWS_WITH(decode_image(nullptr, 0), doctest::Contains("too few bytes"));
    const std::string ppm = "P6\n4 2\n255\n" + std::string(4 * 2 * 3, '\x10');
    const Image im = decode_image(reinterpret_cast<const uint8_t*>(ppm.data()), ppm.size());
    CHECK_EQ(im.width, 4);
    CHECK_EQ(im.height, 2);
    CHECK_THROWS_WITH(decode_image(reinterpret_cast<const uint8_t*>(ppm.data()), ppm.size() - 1), doctest::Contains("truncated"));
    CHECK_THROWS_WITH(decode_image(reinterpret_cast<const uint8_t*>(ppm.data()), ppm.size(), 7), doctest::Contains("exceeds the limit"));
    const std::string huge = "P6\n99999 99999\n255\n" + std::string(16, '\0');
    CHECK_THROWS_WITH(decode_image(reinterpret_cast<const uint8_t*>(huge.data()), huge.size()), doctest::Contains("exceeds the limit"));
    if (codec_has_jpeg()) {
        const std::string bad_jpeg = std::string("\xff\xd8\xff\xe0", 4) + std::string(60, '\x01');
        CHECK_THROWS_WITH(decode_image(reinterpret_cast<const uint8_t*>(bad_jpeg.data()), bad_jpeg.size()), doctest::Contains("corrupt JPEG"));
    }
    if (codec_has_png()) {
        // A valid IHDR (4x2 pixels), then garbage.
        const std::string bad_png = std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x04\0\0\0\x02", 24) + std::string(40, '\x02');
        CHECK_THROWS_WITH(decode_image(reinterpret_cast<const uint8_t*>(bad_png.data()), bad_png.size()), doctest::Contains("corrupt or truncated PNG"));
    }
}
