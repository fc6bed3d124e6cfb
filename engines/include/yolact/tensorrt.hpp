// The TensorRT runtime: loads libyolact_plugins.so and an engine with its sidecar JSON, checks the
// TensorRT version and the GPU, and runs batches asynchronously on CUDA streams.
// This header includes no TensorRT or CUDA header; the library is built only where they are found
// (YOLACT_HAVE_TENSORRT_RUNTIME is defined by the yolact::runtime CMake target).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "yolact/backend.hpp"

namespace yolact {

struct EngineOptions {
    std::string sidecar;         // default: find_sidecar(engine path)
    std::string plugin_library;  // libyolact_plugins.so; default: $YOLACT_PLUGINS_LIB, else the path
                                 // recorded in the sidecar (plugin-flavour engines only)
    int device = 0;              // CUDA device ordinal
    int streams = 2;             // in-flight batches (one execution context + stream each)
    bool strict_gpu_name = false;  // treat another GPU model with the same capability as an error
    bool strict_plugin = true;     // a plugin library other than the one built with (sha256) is an error
};

// Registers NVIDIA's own plugins (libnvinfer_plugin: ModulatedDeformConv2d, the DeformConv of portable
// YOLACT++ engines) once per process; TensorRTEngine::load calls it. Throws Error when it fails.
void init_nvidia_plugins();

// Loads the plugin library into TensorRT's plugin registry once per process (later calls with the
// same path are no-ops). Throws Error when the file is missing or is not a TensorRT plugin library.
void load_plugin_library(const std::string& path);

// The TensorRT and CUDA environment of this process (TensorRT library version, GPU of `device`).
RuntimeEnvironment query_environment(int device = 0);

class TensorRTEngine : public Backend {
public:
    // Checks the sidecar against query_environment() and the files (engine and plugin sha256) before
    // deserializing; one-line Error on any mismatch (other TensorRT, other GPU, plugin library
    // missing or different, sidecar of another engine, unexpected tensors).
    static std::unique_ptr<TensorRTEngine> load(const std::string& engine_path,
                                                const EngineOptions& options = {});
    ~TensorRTEngine() override;

    const EngineInfo& info() const override;

    // Asynchronous use: submit() copies the images into pinned memory, enqueues H2D copy, inference
    // and D2H copy on a free stream and returns at once; collect() waits for that batch.
    // At most `options.streams` batches are in flight; submit() blocks while all are busy.
    using Ticket = long long;
    Ticket submit(const std::vector<ImageView>& images);
    BatchOutputs collect(Ticket ticket);

    // submit + collect.
    BatchOutputs run(const std::vector<ImageView>& images) override;

private:
    struct Impl;
    explicit TensorRTEngine(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace yolact
