// The engine sidecar JSON (written next to every engine by yolact-export --to trt; its JSON Schema is
// yolact_deploy/deploy/schemas/engine_sidecar.schema.json) and the checks that an engine can run
// here: TensorRT version, GPU compute capability, plugin library.
// Pure C++: the checks take the runtime environment as data, so they are tested without a GPU.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "yolact/preprocess.hpp"

namespace yolact {

struct Version {
    int major = -1, minor = 0, patch = 0, build = -1;  // build -1: unknown
    static Version parse(const std::string& text);  // "10.3.0", "10.3.0.26", "11.1"; throws Error
    bool valid() const { return major >= 0; }
    std::string str() const;
    int compare(const Version& o) const;  // major.minor.patch only: <0, 0, >0
};

struct ComputeCapability {
    int major = -1, minor = 0;
    static ComputeCapability parse(const std::string& text);  // "8.7" or "sm_87"; throws Error
    bool valid() const { return major >= 0; }
    std::string str() const;
};

struct EngineInfo {
    std::string source;  // file the info came from (for messages)

    // Where and how the engine was built.
    Version tensorrt;                    // required
    ComputeCapability compute_capability;  // required unless hardware_compatibility == ampere_plus
    std::string gpu_name;
    // Not recorded by the sidecar writer yet (builds use neither): for callers that know better.
    std::string hardware_compatibility = "none";  // none | ampere_plus | same_compute_capability
    bool version_compatible = false;

    std::string engine_sha256;  // of the engine file, when the sidecar records it

    // Plugins: a plugin-flavour engine cannot deserialize without libyolact_plugins.so.
    bool needs_plugins = false;
    std::string plugin_library;  // file name recorded at build time
    std::string plugin_path;     // where it was at build time
    std::string plugin_sha256;   // of the library the engine was built with
    std::vector<std::string> plugin_ops;

    // The model (from the ONNX metadata carried in the sidecar).
    std::string preset, precision, flavour;
    InputGeometry geometry;
    int min_batch = 1, opt_batch = 1;
    int max_detections = 100;
    int proto_height = 0, proto_width = 0;
    std::vector<std::string> class_names;
    std::vector<int> category_ids;
    bool mask_rescoring = false;

    nlohmann::json document;  // everything, for callers that need more
};

// Parses a sidecar document: JSON, then the schema (validate_sidecar), then the checks the schema
// cannot state. Throws Error "<source>: ..." naming the offending field.
EngineInfo parse_engine_info(const std::string& text, const std::string& source = "sidecar");
EngineInfo load_engine_info(const std::string& path);

// The sidecar of an engine: "<engine>.json" or "<engine without extension>.json", whichever exists.
// Throws Error listing the paths tried.
std::string find_sidecar(const std::string& engine_path);

// What the process can offer (filled from TensorRT and CUDA by the runtime, or by tests).
struct RuntimeEnvironment {
    Version tensorrt;
    ComputeCapability compute_capability;
    std::string gpu_name;
    bool plugins_loaded = false;
    std::string plugin_library;  // path that was loaded, if any
};

struct Compatibility {
    std::vector<std::string> errors;    // any error: the engine must not be loaded
    std::vector<std::string> warnings;  // e.g. another GPU model with the same compute capability
    bool ok() const { return errors.empty(); }
    std::string message() const;        // the errors joined in one line
};

Compatibility check_compatibility(const EngineInfo& info, const RuntimeEnvironment& env);

// Throws Error("<source>: <errors>") when check_compatibility reports errors.
void require_compatible(const EngineInfo& info, const RuntimeEnvironment& env);

}  // namespace yolact
