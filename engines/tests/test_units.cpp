// Unit tests without fixtures: JSON, sidecar parsing and compatibility checks (no GPU needed),
// input planning, RLE round trips, image codecs, HTTP request parsing.
#include <random>

#include "harness.hpp"
#include "http.hpp"
#include "yolact/codec.hpp"
#include "yolact/engine_info.hpp"
#include "yolact/json.hpp"
#include "yolact/postprocess.hpp"
#include "yolact/preprocess.hpp"
#include "yolact/rle.hpp"
#include "yolact/sha256.hpp"

using namespace yolact;

// ---- JSON -----------------------------------------------------------------------------------------
TEST(json_parse_and_dump) {
    const json::Value v = json::parse(R"( {"a": [1, -2.5e3, true, null, "x\"\u00e9\ud83d\ude00"], "b": {"c": 0}} )");
    CHECK(v.is_object());
    CHECK_EQ(v.find("a")->as_array().size(), 5u);
    CHECK_EQ(v.find("a")->as_array()[1].as_number(), -2500.0);
    CHECK_EQ(v.find_path("b.c")->as_int(), 0);
    CHECK_EQ(v.find("a")->as_array()[4].as_string(), std::string("x\"\xc3\xa9\xf0\x9f\x98\x80"));
    CHECK_EQ(v.dump(), std::string(R"({"a":[1,-2500,true,null,"x\"é😀"],"b":{"c":0}})"));
    CHECK_EQ(json::parse(json::Value::number(0.30000001192092896).dump()).as_number(), 0.30000001192092896);
}

TEST(json_rejects_malformed) {
    const char* bad[] = {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "\"abc", "[1] 2", "{'a':1}",
                         "nul", "\"\\ud800\"", "-", "1e", "\"\x01\""};
    for (const char* s : bad) CHECK_THROWS(json::parse(s, "t"), "invalid JSON");
    std::string deep(1000, '[');
    CHECK_THROWS(json::parse(deep, "t"), "nesting deeper");
    CHECK_THROWS(json::parse("{\"a\":1}").find("a")->as_string("field a"), "field a must be a string");
}

// ---- sidecar + compatibility ----------------------------------------------------------------------
namespace {

// The layout yolact-export --to trt writes (yolact_deploy/export/tensorrt_build.py make_sidecar);
// the fixture test fx_sidecar_from_python parses files written by that very function.
const char* kSidecar = R"({
  "schema": 1, "kind": "yolact_deploy.tensorrt_engine", "engine": "m.plan",
  "engine_sha256": "eeee", "tensorrt_version": "10.3.0.26",
  "gpu": {"index": 0, "name": "Orin", "compute_capability": "8.7"},
  "precision": "fp16", "strongly_typed": true, "builder_flags": [],
  "profiles": [{"input": "images", "min": [1, 64, 64, 3], "opt": [4, 550, 550, 3], "max": [8, 1080, 1920, 3]}],
  "plugin_library": {"file": "libyolact_plugins.so", "path": "/opt/yd/libyolact_plugins.so", "sha256": "abcd",
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

TEST(sidecar_parse) {
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
    CHECK_EQ(info.engine_sha256, std::string("eeee"));
    CHECK_EQ(info.plugin_sha256, std::string("abcd"));
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

TEST(sha256_known_vectors) {
    CHECK_EQ(sha256_hex("", 0), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK_EQ(sha256_hex("abc", 3), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const std::string m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK_EQ(sha256_hex(m.data(), m.size()), std::string("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    Sha256 s;  // a million 'a', fed in odd pieces
    const std::string chunk(997, 'a');
    size_t left = 1000000;
    while (left) {
        const size_t n = std::min(left, chunk.size());
        s.update(chunk.data(), n);
        left -= n;
    }
    CHECK_EQ(s.hex(), std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

TEST(sidecar_alternative_spellings) {
    const EngineInfo info = parse_engine_info(
        R"({"trt_version": "11.1.0", "compute_capability": [9, 0], "max_batch": 4,
            "class_names": ["a"], "input": {"network_size": [320, 320]}, "flavour": "portable"})", "s");
    CHECK_EQ(info.tensorrt.major, 11);
    CHECK_EQ(info.compute_capability.major, 9);
    CHECK_EQ(info.geometry.max_batch, 4);
    CHECK(!info.needs_plugins);
    CHECK_EQ(info.category_ids[0], 1);
    // Without an input profile only the network size is assumed.
    CHECK_EQ(info.geometry.min_height, 320);
    CHECK_EQ(info.geometry.max_width, 320);
    CHECK_EQ(ComputeCapability::parse(json::parse("\"sm_87\"")).str(), std::string("8.7"));
    CHECK_EQ(ComputeCapability::parse(json::parse("110")).str(), std::string("11.0"));
    CHECK_EQ(ComputeCapability::parse(json::parse("8.6")).str(), std::string("8.6"));
}

TEST(sidecar_errors_are_clear) {
    CHECK_THROWS(parse_engine_info("{}", "e.json"), "e.json: missing the TensorRT version");
    CHECK_THROWS(parse_engine_info(R"({"tensorrt": {"version": "10.3"}})", "e.json"), "missing the GPU compute capability");
    CHECK_THROWS(parse_engine_info(R"({"tensorrt": {"version": "ten"}, "gpu": {"compute_capability": "8.7"}})", "e"),
                 "invalid version");
    CHECK_THROWS(parse_engine_info(R"({"tensorrt_version": "10.3", "compute_capability": "8.7"})", "e"),
                 "missing the network input size");
    CHECK_THROWS(parse_engine_info(R"({"tensorrt_version": "10.3", "compute_capability": "eight",
                                       "input_size": 550})", "e"), "invalid compute capability");
    CHECK_THROWS(parse_engine_info(R"({"tensorrt_version": "10.3", "compute_capability": "8.7", "input_size": 550,
                                       "metadata": {"graph": "raw"}})", "e"), "raw-graph engine");
    CHECK_THROWS(parse_engine_info(R"({"schema": 7})", "e"), "newer than this runtime");
    CHECK_THROWS(parse_engine_info(R"({"tensorrt_version": "10.3", "compute_capability": "8.7", "input_size": 550,
                                       "max_batch": 0})", "e"), "invalid batch profile");
    CHECK_THROWS(parse_engine_info("[1]", "e"), "must be a JSON object");
    CHECK_THROWS(parse_engine_info("{", "e.json"), "e.json: invalid JSON");
    CHECK_THROWS(find_sidecar("/nonexistent/model.plan"), "looked for /nonexistent/model.plan.json or /nonexistent/model.json");
}

TEST(compat_tensorrt_version) {
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

TEST(compat_gpu_and_plugins) {
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
    CHECK_THROWS(require_compatible(info, env), "engine.json: engine uses the yolact TensorRT plugins (");
}

// ---- preprocessing plan ---------------------------------------------------------------------------
TEST(plan_input_rules) {
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
    CHECK_THROWS(plan_input({a.view(), b.view(), c.view()}, g), "exceeds the engine's batch profile (max 2)");
    CHECK_THROWS(plan_input({}, g), "empty batch");
    CHECK_THROWS(plan_input({ImageView{}}, g), "empty image");
    g.max_height = 500;
    CHECK_THROWS(plan_input({big.view()}, g), "outside the engine's input profile");
    // pack_input: exact copy for same-size, resize otherwise; an identity resize is exact.
    g.max_height = 1024;
    a.data[5] = 77;
    std::vector<uint8_t> buf(2 * 480 * 640 * 3);
    pack_input({a.view(), b.view()}, plan_input({a.view(), b.view()}, g), buf.data());
    CHECK_EQ(static_cast<int>(buf[5]), 77);
    const Image same = resize_bilinear_u8(a.view(), 480, 640);
    CHECK(same.data == a.data);
}

TEST(finalize_edge_cases) {
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
    CHECK_THROWS(finalize(v, 0, 20, {}), "image size must be positive");
}

// ---- RLE ------------------------------------------------------------------------------------------
TEST(rle_round_trip_random) {
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
    CHECK_THROWS(rle_from_string("\x7f"), "invalid character");
    CHECK_THROWS(rle_from_string("P"), "ends inside a number");
    CHECK_THROWS(rle_decode({3, 4}, 2, 2), "exceed the mask size");
    CHECK_THROWS(rle_decode({1, 1}, 2, 2), "do not cover");
}

// ---- codecs ---------------------------------------------------------------------------------------
TEST(codec_errors) {
    const std::string junk = "this is not an image at all";
    CHECK_THROWS(decode_image(reinterpret_cast<const uint8_t*>(junk.data()), junk.size()), "not an image");
    CHECK_THROWS(decode_image(nullptr, 0), "too few bytes");
    const std::string ppm = "P6\n4 2\n255\n" + std::string(4 * 2 * 3, '\x10');
    const Image im = decode_image(reinterpret_cast<const uint8_t*>(ppm.data()), ppm.size());
    CHECK_EQ(im.width, 4);
    CHECK_EQ(im.height, 2);
    CHECK_THROWS(decode_image(reinterpret_cast<const uint8_t*>(ppm.data()), ppm.size() - 1), "truncated");
    CHECK_THROWS(decode_image(reinterpret_cast<const uint8_t*>(ppm.data()), ppm.size(), 7), "exceeds the limit");
    const std::string huge = "P6\n99999 99999\n255\n" + std::string(16, '\0');
    CHECK_THROWS(decode_image(reinterpret_cast<const uint8_t*>(huge.data()), huge.size()), "exceeds the limit");
    if (codec_has_jpeg()) {
        const std::string bad_jpeg = std::string("\xff\xd8\xff\xe0", 4) + std::string(60, '\x01');
        CHECK_THROWS(decode_image(reinterpret_cast<const uint8_t*>(bad_jpeg.data()), bad_jpeg.size()), "corrupt JPEG");
    }
    if (codec_has_png()) {
        const std::string bad_png = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(40, '\x02');
        CHECK_THROWS(decode_image(reinterpret_cast<const uint8_t*>(bad_png.data()), bad_png.size()), "corrupt PNG");
    }
}

// ---- HTTP parsing ---------------------------------------------------------------------------------
TEST(http_parse_head) {
    http::Request r;
    std::string err;
    CHECK_EQ(http::parse_head("POST /v1/detect?score_threshold=0.3&top_k=%35 HTTP/1.1\r\nContent-Type: image/jpeg\r\n"
                              "Content-Length:  12 ", r, err), 0);
    CHECK_EQ(r.path, std::string("/v1/detect"));
    CHECK_EQ(*r.header("content-length"), std::string("12"));
    std::string v;
    CHECK(r.query_param("top_k", v));
    CHECK_EQ(v, std::string("5"));
    CHECK(!r.query_param("masks", v));
    http::Request r2;
    CHECK_EQ(http::parse_head("GET / HTTP/2.0", r2, err), 505);
    http::Request r3;
    CHECK_EQ(http::parse_head("garbage", r3, err), 400);
    http::Request r4;
    CHECK_EQ(http::parse_head("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked", r4, err), 501);
    http::Request r5;
    CHECK_EQ(http::parse_head("GET /x HTTP/1.1\r\nno colon here", r5, err), 400);
    CHECK_EQ(http::error_body(413, "too \"big\""), std::string(R"({"error":{"status":413,"message":"too \"big\""}})"));
}
