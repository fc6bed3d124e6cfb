#include "yolact/engine_info.hpp"

#include <cctype>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <sstream>

namespace yolact {
namespace {

// The sidecar schema is owned by the TensorRT build step; accept the documented names plus the
// obvious alternatives so a renamed field gives a clear error, not silent defaults.
const json::Value* lookup(const json::Value& root, std::initializer_list<const char*> paths) {
    for (const char* p : paths) {
        if (const json::Value* v = root.find_path(p)) {
            if (!v->is_null()) return v;
        }
    }
    return nullptr;
}

std::string joined(std::initializer_list<const char*> paths) {
    std::string s;
    for (const char* p : paths) s += (s.empty() ? "" : " or ") + std::string(p);
    return s;
}

int to_int(const json::Value& v, const std::string& what) {
    const int64_t i = v.as_int(what.c_str());
    if (i < -(1LL << 30) || i > (1LL << 30)) throw Error(what + " is out of range");
    return static_cast<int>(i);
}

std::vector<int> int_list(const json::Value& v, const std::string& what) {
    std::vector<int> out;
    for (const json::Value& e : v.as_array(what.c_str())) out.push_back(to_int(e, what + " entry"));
    return out;
}

}  // namespace

// ---- Version / ComputeCapability ---------------------------------------------------------------

Version Version::parse(const std::string& text) {
    Version v;
    int parts[4] = {-1, 0, 0, -1};
    int n = 0;
    size_t i = 0;
    while (i < text.size() && n < 4) {
        if (text[i] < '0' || text[i] > '9') break;
        long value = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            value = value * 10 + (text[i] - '0');
            if (value > 1000000) throw Error("version number too large: '" + text + "'");
            ++i;
        }
        parts[n++] = static_cast<int>(value);
        if (i < text.size() && text[i] == '.') ++i; else break;
    }
    if (n == 0 || i != text.size()) throw Error("invalid version '" + text + "' (expected e.g. 10.3.0)");
    v.major = parts[0];
    v.minor = parts[1];
    v.patch = parts[2];
    v.build = parts[3];
    return v;
}

std::string Version::str() const {
    if (!valid()) return "unknown";
    std::string s = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
    if (build >= 0) s += "." + std::to_string(build);
    return s;
}

int Version::compare(const Version& o) const {
    if (major != o.major) return major < o.major ? -1 : 1;
    if (minor != o.minor) return minor < o.minor ? -1 : 1;
    if (patch != o.patch) return patch < o.patch ? -1 : 1;
    return 0;
}

ComputeCapability ComputeCapability::parse(const json::Value& v) {
    ComputeCapability cc;
    auto bad = [&]() -> ComputeCapability {
        throw Error("invalid compute capability " + v.dump() + " (expected e.g. \"8.7\" or [8, 7])");
    };
    if (v.is_array()) {
        const auto& a = v.as_array();
        if (a.size() != 2) return bad();
        cc.major = static_cast<int>(a[0].as_int("compute capability major"));
        cc.minor = static_cast<int>(a[1].as_int("compute capability minor"));
    } else if (v.is_number()) {
        const double d = v.as_number();
        if (d >= 10 && d == std::floor(d)) {  // 87 -> 8.7, 110 -> 11.0
            cc.major = static_cast<int>(d) / 10;
            cc.minor = static_cast<int>(d) % 10;
        } else {  // 8.7
            cc.major = static_cast<int>(std::floor(d));
            cc.minor = static_cast<int>(std::lround((d - cc.major) * 10));
        }
    } else if (v.is_string()) {
        std::string s = v.as_string();
        if (s.rfind("sm_", 0) == 0 || s.rfind("SM_", 0) == 0) {
            const std::string digits = s.substr(3);
            if (digits.size() < 2 || digits.find_first_not_of("0123456789") != std::string::npos) return bad();
            cc.major = std::stoi(digits.substr(0, digits.size() - 1));
            cc.minor = digits.back() - '0';
        } else {
            const size_t dot = s.find('.');
            if (dot == std::string::npos || dot == 0 || dot + 1 >= s.size() ||
                s.find_first_not_of("0123456789.") != std::string::npos || s.find('.', dot + 1) != std::string::npos) {
                return bad();
            }
            cc.major = std::stoi(s.substr(0, dot));
            cc.minor = std::stoi(s.substr(dot + 1));
        }
    } else {
        return bad();
    }
    if (cc.major < 1 || cc.major > 99 || cc.minor < 0 || cc.minor > 9) return bad();
    return cc;
}

std::string ComputeCapability::str() const {
    return valid() ? std::to_string(major) + "." + std::to_string(minor) : "unknown";
}

// ---- sidecar parsing -----------------------------------------------------------------------------

EngineInfo parse_engine_info(const std::string& text, const std::string& source) {
    EngineInfo info;
    info.source = source;
    info.document = json::parse(text, source);
    const json::Value& root = info.document;
    if (!root.is_object()) throw Error(source + ": the sidecar must be a JSON object");
    auto err = [&](const std::string& msg) { return Error(source + ": " + msg); };
    try {
        if (const json::Value* s = root.find("schema")) {
            if (s->as_int("schema") > 1) {
                throw err("sidecar schema " + std::to_string(s->as_int()) +
                          " is newer than this runtime reads (1): upgrade the yolact runtime");
            }
        }
        // Build environment.
        const auto trt_keys = {"tensorrt.version", "tensorrt_version", "trt_version"};
        const json::Value* trt = lookup(root, trt_keys);
        if (!trt) throw err("missing the TensorRT version the engine was built with (" + joined(trt_keys) + ")");
        info.tensorrt = Version::parse(trt->as_string("TensorRT version"));
        if (const json::Value* hc = lookup(root, {"tensorrt.hardware_compatibility", "hardware_compatibility",
                                                  "gpu.hardware_compatibility"})) {
            std::string h = hc->as_string("hardware_compatibility");
            for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (h == "kampere_plus") h = "ampere_plus";
            if (h == "knone") h = "none";
            if (h == "ksame_compute_capability") h = "same_compute_capability";
            if (h != "none" && h != "ampere_plus" && h != "same_compute_capability") {
                throw err("unknown hardware_compatibility '" + h + "' (none, ampere_plus, same_compute_capability)");
            }
            info.hardware_compatibility = h;
        }
        if (const json::Value* vc = lookup(root, {"tensorrt.version_compatible", "version_compatible"})) {
            info.version_compatible = vc->as_bool("version_compatible");
        }
        const auto cc_keys = {"gpu.compute_capability", "compute_capability", "gpu_compute_capability"};
        if (const json::Value* cc = lookup(root, cc_keys)) {
            info.compute_capability = ComputeCapability::parse(*cc);
        } else if (info.hardware_compatibility != "ampere_plus") {
            throw err("missing the GPU compute capability the engine was built for (" + joined(cc_keys) + ")");
        }
        if (const json::Value* g = lookup(root, {"gpu.name", "gpu_name"})) info.gpu_name = g->as_string("gpu name");

        // The model: the ONNX metadata, nested or at the top level.
        const json::Value* meta = lookup(root, {"metadata", "onnx_metadata", "model"});
        const json::Value& m = meta ? *meta : root;
        if (meta && !meta->is_object()) throw err("metadata must be an object");
        if (const json::Value* g = m.find("graph")) {
            if (g->as_string("graph") == "raw") {
                throw err("this is a raw-graph engine (--raw); the C++ runtime runs end-to-end engines only");
            }
        }
        if (const json::Value* v = m.find("preset")) info.preset = v->as_string("preset");
        if (const json::Value* v = lookup(root, {"precision", "metadata.precision"})) info.precision = v->as_string("precision");
        if (const json::Value* v = m.find("flavour")) info.flavour = v->as_string("flavour");

        // Plugins: yolact-export --to trt writes "plugin_library": {file, path, sha256, ops} or null.
        const json::Value* pl = root.find("plugin_library");
        if (pl && pl->is_object()) {
            info.needs_plugins = true;
            if (const json::Value* v = pl->find("file")) info.plugin_library = v->as_string("plugin_library.file");
            if (const json::Value* v = pl->find("path")) info.plugin_path = v->as_string("plugin_library.path");
            if (const json::Value* v = pl->find("sha256")) info.plugin_sha256 = v->as_string("plugin_library.sha256");
            if (const json::Value* v = pl->find("ops")) {
                for (const json::Value& op : v->as_array("plugin_library.ops")) info.plugin_ops.push_back(op.as_string("plugin op"));
            }
        } else if (pl && pl->is_string()) {
            info.needs_plugins = true;
            info.plugin_library = pl->as_string();
        } else if (const json::Value* r = lookup(root, {"plugins.required", "needs_plugins"})) {
            info.needs_plugins = r->as_bool("plugins.required");
            if (const json::Value* lib = root.find_path("plugins.library")) info.plugin_library = lib->as_string("plugins.library");
        } else if (!pl) {  // an explicit null means none
            info.needs_plugins = info.flavour == "plugins";
        }
        if (const json::Value* sha = root.find("engine_sha256")) {
            if (!sha->is_null()) info.engine_sha256 = sha->as_string("engine_sha256");
        }

        // Input geometry and batch profile.
        InputGeometry& g = info.geometry;
        const json::Value* ns = lookup(m, {"input.network_size", "network_size"});
        if (ns) {
            const std::vector<int> hw = int_list(*ns, "input.network_size");
            if (hw.size() != 2) throw err("input.network_size must be [height, width]");
            g.network_height = hw[0];
            g.network_width = hw[1];
        } else if (const json::Value* ms = lookup(m, {"input_size", "max_size", "config.max_size"})) {
            g.network_height = g.network_width = to_int(*ms, "input_size");
        } else {
            throw err("missing the network input size (metadata.input.network_size)");
        }
        if (g.network_height < 1 || g.network_width < 1) throw err("network size must be positive");
        // Without an input profile only the network size is assumed to be accepted.
        g.min_height = g.max_height = g.network_height;
        g.min_width = g.max_width = g.network_width;
        const json::Value* prof = lookup(root, {"profile.images", "input_profile"});
        if (const json::Value* list = root.find("profiles"); !prof && list && list->is_array()) {
            // [{"input": "images", "min": [B,H,W,3], "opt": ..., "max": ...}, ...]: the first for images
            for (const json::Value& p : list->as_array("profiles")) {
                const json::Value* in = p.find("input");
                if (p.is_object() && (!in || (in->is_string() && in->as_string() == "images"))) {
                    prof = &p;
                    break;
                }
            }
            if (!prof) throw err("profiles has no entry for the input 'images'");
        }
        if (prof) {
            const auto read = [&](const char* k) {
                const json::Value* v = prof->find(k);
                if (!v) throw err(std::string("input profile lacks '") + k + "'");
                const std::vector<int> s = int_list(*v, std::string("profile ") + k);
                if (s.size() != 4 || s[3] != 3) throw err(std::string("profile ") + k + " must be [B, H, W, 3]");
                return s;
            };
            const std::vector<int> lo = read("min"), hi = read("max");
            const json::Value* ov = prof->find("opt");
            const std::vector<int> opt = ov ? read("opt") : hi;
            info.min_batch = lo[0];
            info.opt_batch = opt[0];
            g.max_batch = hi[0];
            g.min_height = lo[1];
            g.min_width = lo[2];
            g.max_height = hi[1];
            g.max_width = hi[2];
        } else if (const json::Value* b = lookup(root, {"profile.batch", "batch"})) {
            if (b->is_array()) {
                const std::vector<int> v = int_list(*b, "profile.batch");
                if (v.size() != 3) throw err("profile.batch must be [min, opt, max]");
                info.min_batch = v[0];
                info.opt_batch = v[1];
                g.max_batch = v[2];
            } else {
                g.max_batch = to_int(*b, "batch");
            }
        } else if (const json::Value* mb = lookup(root, {"max_batch", "profile.max_batch"})) {
            g.max_batch = to_int(*mb, "max_batch");
        }
        if (g.max_batch < 1 || info.min_batch < 1 || info.min_batch > g.max_batch) {
            throw err("invalid batch profile (min " + std::to_string(info.min_batch) + ", max " +
                      std::to_string(g.max_batch) + ")");
        }
        if (g.min_height < 1 || g.min_width < 1 || g.min_height > g.max_height || g.min_width > g.max_width) {
            throw err("invalid input height/width profile");
        }

        // Outputs.
        if (const json::Value* k = lookup(m, {"max_detections"})) info.max_detections = to_int(*k, "max_detections");
        if (info.max_detections < 1) throw err("max_detections must be >= 1");
        if (const json::Value* ps = lookup(m, {"proto_size"})) {
            const std::vector<int> hw = int_list(*ps, "proto_size");
            if (hw.size() != 2 || hw[0] < 1 || hw[1] < 1) throw err("proto_size must be [height, width]");
            info.proto_height = hw[0];
            info.proto_width = hw[1];
        }
        if (const json::Value* cn = lookup(m, {"class_names"})) {
            for (const json::Value& c : cn->as_array("class_names")) info.class_names.push_back(c.as_string("class name"));
        }
        if (const json::Value* ci = lookup(m, {"category_ids"})) {
            info.category_ids = int_list(*ci, "category_ids");
        } else {
            for (size_t i = 0; i < info.class_names.size(); ++i) info.category_ids.push_back(static_cast<int>(i) + 1);
        }
        if (!info.class_names.empty() && info.category_ids.size() != info.class_names.size()) {
            throw err("category_ids and class_names differ in length");
        }
        if (const json::Value* mr = m.find("mask_rescoring")) info.mask_rescoring = mr->as_bool("mask_rescoring");
    } catch (const Error& e) {
        const std::string what = e.what();
        if (what.rfind(source + ":", 0) == 0) throw;
        throw err(what);
    }
    return info;
}

EngineInfo load_engine_info(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot read engine sidecar " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return parse_engine_info(ss.str(), path);
}

std::string find_sidecar(const std::string& engine_path) {
    std::vector<std::string> tried = {engine_path + ".json"};
    const size_t slash = engine_path.find_last_of('/');
    const size_t dot = engine_path.find_last_of('.');
    if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
        tried.push_back(engine_path.substr(0, dot) + ".json");
    }
    for (const std::string& p : tried) {
        if (std::ifstream(p).good()) return p;
    }
    std::string list;
    for (const std::string& p : tried) list += (list.empty() ? "" : " or ") + p;
    throw Error("engine sidecar JSON not found (looked for " + list +
                "); it is written next to the engine by yolact-export --to trt");
}

// ---- compatibility -------------------------------------------------------------------------------

std::string Compatibility::message() const {
    std::string s;
    for (const std::string& e : errors) s += (s.empty() ? "" : "; ") + e;
    return s;
}

Compatibility check_compatibility(const EngineInfo& info, const RuntimeEnvironment& env) {
    Compatibility c;
    // TensorRT: plans are tied to the exact version unless built version-compatible (then any
    // later release of the same major can run them).
    if (!env.tensorrt.valid()) {
        c.errors.push_back("the TensorRT library version is unknown");
    } else if (info.version_compatible) {
        if (env.tensorrt.major != info.tensorrt.major || env.tensorrt.compare(info.tensorrt) < 0) {
            c.errors.push_back("engine built (version-compatible) with TensorRT " + info.tensorrt.str() +
                               " needs TensorRT " + std::to_string(info.tensorrt.major) + ".x >= " +
                               info.tensorrt.str() + ", this process has " + env.tensorrt.str());
        }
    } else if (env.tensorrt.compare(info.tensorrt) != 0 ||
               (env.tensorrt.build >= 0 && info.tensorrt.build >= 0 && env.tensorrt.build != info.tensorrt.build)) {
        c.errors.push_back("engine built with TensorRT " + info.tensorrt.str() + ", this process has " +
                           env.tensorrt.str() + ": rebuild the engine here (yolact-export --to trt)");
    }
    // GPU.
    const ComputeCapability& want = info.compute_capability;
    const ComputeCapability& have = env.compute_capability;
    if (!have.valid()) {
        c.errors.push_back("no CUDA GPU found");
    } else if (info.hardware_compatibility == "ampere_plus") {
        if (have.major < 8) {
            c.errors.push_back("engine built for Ampere or newer GPUs (compute capability >= 8.0), this GPU is " +
                               have.str() + (env.gpu_name.empty() ? "" : " (" + env.gpu_name + ")"));
        }
    } else if (want.major != have.major || want.minor != have.minor) {
        c.errors.push_back("engine built for compute capability " + want.str() +
                           (info.gpu_name.empty() ? "" : " (" + info.gpu_name + ")") + ", this GPU is " +
                           have.str() + (env.gpu_name.empty() ? "" : " (" + env.gpu_name + ")") +
                           ": rebuild the engine on this device");
    } else if (info.hardware_compatibility == "none" && !info.gpu_name.empty() && !env.gpu_name.empty() &&
               info.gpu_name != env.gpu_name) {
        c.warnings.push_back("engine built on " + info.gpu_name + ", running on " + env.gpu_name +
                             " (same compute capability " + have.str() + "): it runs, maybe not at its best speed");
    }
    // Plugins.
    if (info.needs_plugins && !env.plugins_loaded) {
        std::string ops;
        for (const std::string& op : info.plugin_ops) ops += (ops.empty() ? " (" : ", ") + op;
        if (!ops.empty()) ops += ")";
        c.errors.push_back("engine uses the yolact TensorRT plugins" + ops + ": load " +
                           (info.plugin_library.empty() ? std::string("libyolact_plugins.so") : info.plugin_library) +
                           " (built for TensorRT " + std::to_string(info.tensorrt.major) + ".x) first");
    }
    return c;
}

void require_compatible(const EngineInfo& info, const RuntimeEnvironment& env) {
    const Compatibility c = check_compatibility(info, env);
    if (!c.ok()) throw Error(info.source + ": " + c.message());
}

}  // namespace yolact
