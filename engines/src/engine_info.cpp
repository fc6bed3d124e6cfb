#include "yolact/engine_info.hpp"

#include "yolact/sidecar_schema.hpp"

#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

namespace yolact {
namespace {

using nlohmann::json;

std::vector<int> ints(const json& v) { return v.get<std::vector<int>>(); }  // schema-checked

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

ComputeCapability ComputeCapability::parse(const std::string& text) {
    ComputeCapability cc;
    const bool sm = text.rfind("sm_", 0) == 0;
    const std::string digits = sm ? text.substr(3) : text;
    const size_t dot = digits.find('.');
    const bool ok = sm ? digits.size() >= 2 && digits.size() <= 3 && digits.find_first_not_of("0123456789") == std::string::npos
                       : dot != std::string::npos && dot >= 1 && dot <= 2 && dot + 2 == digits.size() &&
                             digits.find_first_not_of("0123456789.") == std::string::npos;
    if (!ok) throw Error("invalid compute capability '" + text + "' (expected e.g. \"8.7\")");
    cc.major = std::stoi(sm ? digits.substr(0, digits.size() - 1) : digits.substr(0, dot));
    cc.minor = digits.back() - '0';
    if (cc.major < 1) throw Error("invalid compute capability '" + text + "' (expected e.g. \"8.7\")");
    return cc;
}

std::string ComputeCapability::str() const {
    return valid() ? std::to_string(major) + "." + std::to_string(minor) : "unknown";
}

// ---- sidecar parsing -----------------------------------------------------------------------------

EngineInfo parse_engine_info(const std::string& text, const std::string& source) {
    EngineInfo info;
    info.source = source;
    info.document = parse_json(text, source);
    const json& root = info.document;
    auto err = [&](const std::string& msg) { return Error(source + ": " + msg); };
    if (!root.is_object()) throw err("the sidecar must be a JSON object");
    // Before the schema, so that a newer sidecar says so instead of naming a field.
    if (auto s = root.find("schema"); s != root.end() && s->is_number_integer() && s->get<long long>() > 1) {
        throw err("sidecar schema " + s->dump() + " is newer than this runtime reads (1): upgrade the yolact runtime");
    }
    const std::vector<std::string> errors = sidecar_schema_errors(root);
    if (!errors.empty()) {
        throw err("does not follow the engine sidecar schema: " + errors[0] +
                  (errors.size() > 1 ? " (and " + std::to_string(errors.size() - 1) + " more)" : ""));
    }
    try {
        // From here on every field has the type the schema states.
        const json& m = root.at("model");
        if (m.at("graph") == "raw") {
            throw Error("this is a raw-graph engine (--raw); the C++ runtime runs end-to-end engines only");
        }
        info.tensorrt = Version::parse(root.at("tensorrt_version").get<std::string>());
        info.compute_capability = ComputeCapability::parse(root.at("gpu").at("compute_capability").get<std::string>());
        info.gpu_name = root.at("gpu").at("name").get<std::string>();
        info.engine_sha256 = root.at("engine_sha256").get<std::string>();
        info.precision = root.at("precision").get<std::string>();
        if (auto p = m.find("precision"); p != m.end()) info.precision = p->get<std::string>();
        info.preset = m.at("preset").get<std::string>();
        info.flavour = m.at("flavour").get<std::string>();

        // Plugins: {file, path, sha256, ops} or null (portable engine).
        const json& pl = root.at("plugin_library");
        info.needs_plugins = pl.is_object();
        if (info.needs_plugins) {
            info.plugin_library = pl.at("file").get<std::string>();
            info.plugin_path = pl.at("path").get<std::string>();
            info.plugin_sha256 = pl.at("sha256").get<std::string>();
            info.plugin_ops = pl.at("ops").get<std::vector<std::string>>();
        }

        // Input geometry and batch profile: the profile of the input "images".
        InputGeometry& g = info.geometry;
        const std::vector<int> ns = ints(m.at("input").at("network_size"));
        g.network_height = ns[0];
        g.network_width = ns[1];
        const json* prof = nullptr;
        for (const json& p : root.at("profiles")) {
            if (p.at("input") == "images") {
                prof = &p;
                break;
            }
        }
        if (!prof) throw Error("profiles has no entry for the input 'images'");
        const auto shape = [&](const char* k) {
            const std::vector<int> s = ints(prof->at(k));
            if (s[3] != 3) throw Error(std::string("profile ") + k + " must be [B, H, W, 3]");
            return s;
        };
        const std::vector<int> lo = shape("min"), opt = shape("opt"), hi = shape("max");
        info.min_batch = lo[0];
        info.opt_batch = opt[0];
        g.max_batch = hi[0];
        g.min_height = lo[1];
        g.min_width = lo[2];
        g.max_height = hi[1];
        g.max_width = hi[2];
        if (info.min_batch > g.max_batch || opt[0] < lo[0] || opt[0] > hi[0]) {
            throw Error("invalid batch profile (min " + std::to_string(info.min_batch) + ", opt " +
                        std::to_string(opt[0]) + ", max " + std::to_string(g.max_batch) + ")");
        }
        if (g.min_height > g.max_height || g.min_width > g.max_width) throw Error("invalid input height/width profile");

        // Outputs.
        if (auto k = m.find("max_detections"); k != m.end()) info.max_detections = k->get<int>();
        if (auto ps = m.find("proto_size"); ps != m.end()) {
            const std::vector<int> hw = ints(*ps);
            info.proto_height = hw[0];
            info.proto_width = hw[1];
        }
        info.class_names = m.at("class_names").get<std::vector<std::string>>();
        info.category_ids = ints(m.at("category_ids"));
        if (info.category_ids.size() != info.class_names.size()) {
            throw Error("category_ids and class_names differ in length");
        }
        if (auto mr = m.find("mask_rescoring"); mr != m.end()) info.mask_rescoring = mr->get<bool>();
    } catch (const json::exception& e) {  // cannot happen for schema-valid input; kept one line
        throw err(e.what());
    } catch (const Error& e) {
        throw err(e.what());
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
