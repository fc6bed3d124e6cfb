// TensorRT + CUDA runtime. Compiles against the TensorRT 10.3+ and 11.x headers (only API that is
// the same in both: name-based tensors, enqueueV3, IPluginRegistry::loadLibrary).
#include "yolact/tensorrt.hpp"
#include "yolact/sha256.hpp"

#include <NvInferPlugin.h>
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include <climits>

namespace yolact {
namespace {

using nvinfer1::DataType;

class Logger : public nvinfer1::ILogger {
public:
    void log(Severity severity, const char* msg) noexcept override {
        if (severity <= Severity::kWARNING) std::fprintf(stderr, "[TensorRT] %s\n", msg);
    }
};

Logger& logger() {
    static Logger instance;
    return instance;
}

void cuda_check(cudaError_t e, const std::string& what) {
    if (e != cudaSuccess) throw Error(what + ": CUDA error " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

size_t dtype_size(DataType t) {
    switch (t) {
        case DataType::kFLOAT: case DataType::kINT32: return 4;
        case DataType::kHALF: case DataType::kBF16: return 2;
        case DataType::kINT64: return 8;
        case DataType::kUINT8: case DataType::kINT8: case DataType::kBOOL: return 1;
        default: return 0;
    }
}

const char* dtype_name(DataType t) {
    switch (t) {
        case DataType::kFLOAT: return "float32";
        case DataType::kHALF: return "float16";
        case DataType::kBF16: return "bfloat16";
        case DataType::kINT32: return "int32";
        case DataType::kINT64: return "int64";
        case DataType::kUINT8: return "uint8";
        case DataType::kINT8: return "int8";
        case DataType::kBOOL: return "bool";
        default: return "other";
    }
}

float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; --exp; }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

float bf16_to_float(uint16_t h) {
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

void to_float(const void* src, DataType t, size_t n, float* dst) {
    if (t == DataType::kFLOAT) {
        std::memcpy(dst, src, n * 4);
    } else if (t == DataType::kHALF) {
        const uint16_t* s = static_cast<const uint16_t*>(src);
        for (size_t i = 0; i < n; ++i) dst[i] = half_to_float(s[i]);
    } else {  // kBF16 (checked at load)
        const uint16_t* s = static_cast<const uint16_t*>(src);
        for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_float(s[i]);
    }
}

void to_int32(const void* src, DataType t, size_t n, int32_t* dst) {
    if (t == DataType::kINT32) {
        std::memcpy(dst, src, n * 4);
    } else {  // kINT64 (checked at load)
        const int64_t* s = static_cast<const int64_t*>(src);
        for (size_t i = 0; i < n; ++i) {
            dst[i] = static_cast<int32_t>(std::max<int64_t>(INT32_MIN, std::min<int64_t>(INT32_MAX, s[i])));
        }
    }
}

std::string dims_str(const nvinfer1::Dims& d) {
    std::string s = "[";
    for (int i = 0; i < d.nbDims; ++i) s += (i ? ", " : "") + std::to_string(d.d[i]);
    return s + "]";
}

struct PluginState {
    std::mutex mutex;
    std::set<std::string> loaded;
};

PluginState& plugin_state() {
    static PluginState s;
    return s;
}

struct DeviceBuffer {
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    void* ptr = nullptr;
    size_t bytes = 0;
    void reserve(size_t n, const std::string& what) {
        if (n <= bytes) return;
        if (ptr) cudaFree(ptr);
        ptr = nullptr;
        bytes = 0;
        cuda_check(cudaMalloc(&ptr, n), "cudaMalloc " + what);
        bytes = n;
    }
    ~DeviceBuffer() { if (ptr) cudaFree(ptr); }
};

struct HostBuffer {  // pinned, so the async copies are truly asynchronous
    HostBuffer() = default;
    HostBuffer(const HostBuffer&) = delete;
    HostBuffer& operator=(const HostBuffer&) = delete;
    void* ptr = nullptr;
    size_t bytes = 0;
    void reserve(size_t n, const std::string& what) {
        if (n <= bytes) return;
        if (ptr) cudaFreeHost(ptr);
        ptr = nullptr;
        bytes = 0;
        cuda_check(cudaMallocHost(&ptr, n), "cudaMallocHost " + what);
        bytes = n;
    }
    ~HostBuffer() { if (ptr) cudaFreeHost(ptr); }
};

// The contract's outputs; mask_scores is optional (older exports).
const char* const kOutputs[] = {"num_detections", "boxes", "scores", "mask_scores", "classes", "masks"};
constexpr int kNumOutputs = 6;
constexpr const char* kInput = "images";

struct Slot {
    std::unique_ptr<nvinfer1::IExecutionContext> context;
    cudaStream_t stream = nullptr;
    cudaEvent_t done = nullptr;
    DeviceBuffer d_in;
    HostBuffer h_in;
    DeviceBuffer d_out[kNumOutputs];
    HostBuffer h_out[kNumOutputs];
    std::map<std::string, DeviceBuffer> d_extra;  // other outputs (e.g. indices): bound, not copied
    bool busy = false;
    long long ticket = -1;
    int batch = 0;
    ~Slot() {
        if (done) cudaEventDestroy(done);
        if (stream) cudaStreamDestroy(stream);
    }
};

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot read engine file " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

void init_nvidia_plugins() {
    // NVIDIA's plugins (libnvinfer_plugin): the ONNX parser turns DeformConv into ModulatedDeformConv2d,
    // so a portable YOLACT++ engine cannot deserialize before they are registered. Once per process;
    // the logger is the process-wide one, which outlives every engine.
    static const bool ok = initLibNvInferPlugins(&logger(), "");
    if (!ok) throw Error("TensorRT: initLibNvInferPlugins failed (see the [TensorRT] message above)");
}

void load_plugin_library(const std::string& path) {
    PluginState& s = plugin_state();
    std::lock_guard<std::mutex> lock(s.mutex);
    char resolved[PATH_MAX];
    if (!realpath(path.c_str(), resolved)) throw Error("plugin library not found: " + path);
    if (s.loaded.count(resolved)) return;
    // loadLibrary needs the library's getCreators/setLoggerFinder exports; it fails (nullptr) if the
    // library was built for another TensorRT major or its creators are already registered.
    if (!::getPluginRegistry()->loadLibrary(resolved)) {
        throw Error(path + ": TensorRT could not load this plugin library (see the [TensorRT] message "
                    "above: built for another TensorRT version, or loaded twice)");
    }
    s.loaded.insert(resolved);
}

RuntimeEnvironment query_environment(int device) {
    RuntimeEnvironment env;
    env.tensorrt.major = getInferLibMajorVersion();
    env.tensorrt.minor = getInferLibMinorVersion();
    env.tensorrt.patch = getInferLibPatchVersion();
    env.tensorrt.build = getInferLibBuildVersion();
    int count = 0;
    if (cudaGetDeviceCount(&count) == cudaSuccess && device >= 0 && device < count) {
        int major = -1, minor = 0;
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
        env.compute_capability.major = major;
        env.compute_capability.minor = minor;
        cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, device) == cudaSuccess) env.gpu_name = prop.name;
    } else {
        cudaGetLastError();  // clear the sticky "no device" error
    }
    PluginState& s = plugin_state();
    std::lock_guard<std::mutex> lock(s.mutex);
    env.plugins_loaded = !s.loaded.empty();
    if (!s.loaded.empty()) env.plugin_library = *s.loaded.begin();
    return env;
}

struct TensorRTEngine::Impl {
    EngineInfo info;
    int device = 0;
    std::unique_ptr<nvinfer1::IRuntime> runtime;
    std::unique_ptr<nvinfer1::ICudaEngine> engine;
    DataType out_types[kNumOutputs] = {};
    bool has_output[kNumOutputs] = {};
    std::vector<std::pair<std::string, DataType>> extra_outputs;  // TensorRT needs every address set
    std::vector<std::unique_ptr<Slot>> slots;
    std::mutex mutex;
    std::condition_variable freed;
    long long next_ticket = 0;

    ~Impl() {
        slots.clear();  // contexts before the engine, the engine before the runtime
        engine.reset();
        runtime.reset();
    }

    void inspect() {
        const int n = engine->getNbIOTensors();
        std::set<std::string> names;
        for (int i = 0; i < n; ++i) names.insert(engine->getIOTensorName(i));
        const std::string src = info.source;
        if (!names.count(kInput) || engine->getTensorIOMode(kInput) != nvinfer1::TensorIOMode::kINPUT) {
            throw Error(src + ": the engine has no input tensor 'images' (is it an end-to-end yolact engine?)");
        }
        const DataType in_t = engine->getTensorDataType(kInput);
        const nvinfer1::Dims in_d = engine->getTensorShape(kInput);
        if (in_t != DataType::kUINT8 || in_d.nbDims != 4 || in_d.d[3] != 3) {
            throw Error(src + ": input 'images' is " + dtype_name(in_t) + " " + dims_str(in_d) +
                        ", expected uint8 [B, H, W, 3]");
        }
        for (const std::string& name : names) {
            if (engine->getTensorIOMode(name.c_str()) != nvinfer1::TensorIOMode::kOUTPUT) continue;
            bool known = false;
            for (const char* k : kOutputs) known = known || name == k;
            if (!known) {
                const DataType t = engine->getTensorDataType(name.c_str());
                if (dtype_size(t) == 0) throw Error(src + ": output '" + name + "' has an unsupported type");
                extra_outputs.emplace_back(name, t);
            }
        }
        for (int o = 0; o < kNumOutputs; ++o) {
            const char* name = kOutputs[o];
            has_output[o] = names.count(name) > 0;
            if (!has_output[o]) {
                if (o == 3) continue;  // mask_scores is optional
                throw Error(src + ": the engine lacks the output '" + name + "'");
            }
            const DataType t = engine->getTensorDataType(name);
            const bool is_int = o == 0 || o == 4;
            const bool ok = is_int ? (t == DataType::kINT32 || t == DataType::kINT64)
                                   : (t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16);
            if (!ok) throw Error(src + ": output '" + name + "' has unsupported type " + dtype_name(t));
            out_types[o] = t;
        }
        // K and the prototype size are static in the contract.
        const nvinfer1::Dims md = engine->getTensorShape("masks");
        if (md.nbDims != 4 || md.d[1] <= 0 || md.d[2] <= 0 || md.d[3] <= 0) {
            throw Error(src + ": output 'masks' has shape " + dims_str(md) + ", expected [B, K, Hp, Wp] with static K, Hp, Wp");
        }
        if (md.d[1] != info.max_detections) {
            std::fprintf(stderr, "yolact: warning: %s says K=%d, the engine has K=%lld; using the engine's\n",
                         src.c_str(), info.max_detections, static_cast<long long>(md.d[1]));
        }
        info.max_detections = static_cast<int>(md.d[1]);
        info.proto_height = static_cast<int>(md.d[2]);
        info.proto_width = static_cast<int>(md.d[3]);
        // The engine's optimization profile 0 is the truth for batch and input size.
        const nvinfer1::Dims lo = engine->getProfileShape(kInput, 0, nvinfer1::OptProfileSelector::kMIN);
        const nvinfer1::Dims hi = engine->getProfileShape(kInput, 0, nvinfer1::OptProfileSelector::kMAX);
        if (lo.nbDims == 4 && hi.nbDims == 4) {
            InputGeometry& g = info.geometry;
            if (g.max_batch != hi.d[0]) {
                std::fprintf(stderr, "yolact: warning: %s says max batch %d, the engine profile %lld; using the engine's\n",
                             src.c_str(), g.max_batch, static_cast<long long>(hi.d[0]));
            }
            info.min_batch = static_cast<int>(lo.d[0]);
            g.max_batch = static_cast<int>(hi.d[0]);
            g.min_height = static_cast<int>(lo.d[1]);
            g.min_width = static_cast<int>(lo.d[2]);
            g.max_height = static_cast<int>(hi.d[1]);
            g.max_width = static_cast<int>(hi.d[2]);
        }
    }

    Slot& acquire(std::unique_lock<std::mutex>& lock) {
        while (true) {
            for (auto& s : slots) {
                if (!s->busy) {
                    s->busy = true;
                    return *s;
                }
            }
            freed.wait(lock);
        }
    }

    void release(Slot& s) {
        {
            std::lock_guard<std::mutex> lock(mutex);
            s.busy = false;
            s.ticket = -1;
        }
        freed.notify_one();
    }

    size_t output_elems(int o, int batch) const {
        const size_t k = static_cast<size_t>(info.max_detections);
        switch (o) {
            case 0: return batch;
            case 1: return batch * k * 4;
            case 5: return batch * k * info.proto_height * info.proto_width;
            default: return batch * k;
        }
    }
};

TensorRTEngine::TensorRTEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TensorRTEngine::~TensorRTEngine() = default;

const EngineInfo& TensorRTEngine::info() const { return impl_->info; }

std::unique_ptr<TensorRTEngine> TensorRTEngine::load(const std::string& path, const EngineOptions& options) {
    auto impl = std::make_unique<Impl>();
    const std::string sidecar = options.sidecar.empty() ? find_sidecar(path) : options.sidecar;
    impl->info = load_engine_info(sidecar);
    impl->device = options.device;
    if (options.streams < 1 || options.streams > 16) throw Error("streams must be 1..16");

    // This library is compiled against one TensorRT major; the loaded libnvinfer must match it.
    if (getInferLibMajorVersion() != NV_TENSORRT_MAJOR) {
        throw Error("this yolact runtime was compiled for TensorRT " + std::to_string(NV_TENSORRT_MAJOR) +
                    ".x but libnvinfer is " + std::to_string(getInferLibMajorVersion()) + ".x");
    }
    // The runtime first: it sets up TensorRT's logger before plugins are loaded.
    impl->runtime.reset(nvinfer1::createInferRuntime(logger()));
    if (!impl->runtime) throw Error("TensorRT: createInferRuntime failed");
    init_nvidia_plugins();
    // Plugin library: explicit path, else $YOLACT_PLUGINS_LIB, else where the sidecar says it was.
    std::string plugin = options.plugin_library;
    if (plugin.empty() && impl->info.needs_plugins) {
        const char* env = std::getenv("YOLACT_PLUGINS_LIB");
        if (env && *env) plugin = env;
        else if (!impl->info.plugin_path.empty() && std::ifstream(impl->info.plugin_path).good()) plugin = impl->info.plugin_path;
    }
    if (!plugin.empty()) {
        if (!impl->info.plugin_sha256.empty()) {
            const std::string sha = sha256_file(plugin);
            if (sha != impl->info.plugin_sha256) {
                const std::string msg = "plugin library " + plugin + " is not the one the engine was built with (sha256 differs)";
                if (options.strict_plugin) throw Error(impl->info.source + ": " + msg + "; rebuild the engine against it");
                std::fprintf(stderr, "yolact: warning: %s\n", msg.c_str());
            }
        }
        load_plugin_library(plugin);
    }

    cuda_check(cudaSetDevice(options.device), "cudaSetDevice(" + std::to_string(options.device) + ")");
    const RuntimeEnvironment env = query_environment(options.device);
    Compatibility c = check_compatibility(impl->info, env);
    if (options.strict_gpu_name && !c.warnings.empty()) {
        c.errors.insert(c.errors.end(), c.warnings.begin(), c.warnings.end());
    }
    for (const std::string& w : c.warnings) std::fprintf(stderr, "yolact: warning: %s\n", w.c_str());
    if (!c.ok()) throw Error(impl->info.source + ": " + c.message());

    const std::string blob = read_file(path);
    if (blob.empty()) throw Error("engine file is empty: " + path);
    if (!impl->info.engine_sha256.empty() && sha256_hex(blob.data(), blob.size()) != impl->info.engine_sha256) {
        throw Error(impl->info.source + ": the sidecar does not belong to " + path +
                    " (sha256 differs from the one recorded at build time)");
    }
    impl->engine.reset(impl->runtime->deserializeCudaEngine(blob.data(), blob.size()));
    if (!impl->engine) {
        throw Error(path + ": TensorRT could not deserialize the engine (see the [TensorRT] message above)");
    }
    impl->inspect();
    for (int i = 0; i < options.streams; ++i) {
        auto s = std::make_unique<Slot>();
        s->context.reset(impl->engine->createExecutionContext());
        if (!s->context) throw Error("TensorRT: createExecutionContext failed (out of GPU memory?)");
        cuda_check(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking), "cudaStreamCreate");
        cuda_check(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming), "cudaEventCreate");
        impl->slots.push_back(std::move(s));
    }
    return std::unique_ptr<TensorRTEngine>(new TensorRTEngine(std::move(impl)));
}

TensorRTEngine::Ticket TensorRTEngine::submit(const std::vector<ImageView>& images) {
    Impl& m = *impl_;
    const InputPlan plan = plan_input(images, m.info.geometry);
    const int batch = static_cast<int>(images.size());
    Slot* slot;
    {
        std::unique_lock<std::mutex> lock(m.mutex);
        slot = &m.acquire(lock);
    }
    try {
        cuda_check(cudaSetDevice(m.device), "cudaSetDevice");
        const size_t in_bytes = static_cast<size_t>(batch) * plan.height * plan.width * 3;
        slot->h_in.reserve(in_bytes, "input");
        slot->d_in.reserve(in_bytes, "input");
        pack_input(images, plan, static_cast<uint8_t*>(slot->h_in.ptr));
        nvinfer1::IExecutionContext& ctx = *slot->context;
        if (!ctx.setInputShape(kInput, nvinfer1::Dims4(batch, plan.height, plan.width, 3))) {
            throw Error("TensorRT rejected the input shape [" + std::to_string(batch) + ", " +
                        std::to_string(plan.height) + ", " + std::to_string(plan.width) + ", 3]");
        }
        ctx.setTensorAddress(kInput, slot->d_in.ptr);
        for (int o = 0; o < kNumOutputs; ++o) {
            if (!m.has_output[o]) continue;
            const size_t bytes = m.output_elems(o, batch) * dtype_size(m.out_types[o]);
            slot->d_out[o].reserve(bytes, kOutputs[o]);
            slot->h_out[o].reserve(bytes, kOutputs[o]);
            ctx.setTensorAddress(kOutputs[o], slot->d_out[o].ptr);
        }
        for (const auto& [name, type] : m.extra_outputs) {
            const nvinfer1::Dims d = ctx.getTensorShape(name.c_str());
            size_t elems = 1;
            for (int i = 0; i < d.nbDims; ++i) {
                if (d.d[i] < 0) throw Error("TensorRT could not infer the shape of output '" + name + "'");
                elems *= static_cast<size_t>(d.d[i]);
            }
            DeviceBuffer& buf = slot->d_extra[name];
            buf.reserve(std::max<size_t>(elems * dtype_size(type), 1), name);
            ctx.setTensorAddress(name.c_str(), buf.ptr);
        }
        cuda_check(cudaMemcpyAsync(slot->d_in.ptr, slot->h_in.ptr, in_bytes, cudaMemcpyHostToDevice, slot->stream),
                   "copy input to the GPU");
        if (!ctx.enqueueV3(slot->stream)) throw Error("TensorRT enqueueV3 failed (see the [TensorRT] message above)");
        for (int o = 0; o < kNumOutputs; ++o) {
            if (!m.has_output[o]) continue;
            const size_t bytes = m.output_elems(o, batch) * dtype_size(m.out_types[o]);
            cuda_check(cudaMemcpyAsync(slot->h_out[o].ptr, slot->d_out[o].ptr, bytes, cudaMemcpyDeviceToHost,
                                       slot->stream), std::string("copy ") + kOutputs[o] + " to the host");
        }
        cuda_check(cudaEventRecord(slot->done, slot->stream), "cudaEventRecord");
    } catch (...) {
        m.release(*slot);
        throw;
    }
    std::lock_guard<std::mutex> lock(m.mutex);
    slot->batch = batch;
    slot->ticket = m.next_ticket++;
    return slot->ticket;
}

BatchOutputs TensorRTEngine::collect(Ticket ticket) {
    Impl& m = *impl_;
    Slot* slot = nullptr;
    {
        std::lock_guard<std::mutex> lock(m.mutex);
        for (auto& s : m.slots) {
            if (s->busy && s->ticket == ticket) slot = s.get();
        }
    }
    if (!slot) throw Error("collect: unknown or already collected ticket " + std::to_string(ticket));
    BatchOutputs out;
    try {
        cuda_check(cudaEventSynchronize(slot->done), "inference");
        const int b = slot->batch;
        out.resize(b, m.info.max_detections, m.info.proto_height, m.info.proto_width);
        to_int32(slot->h_out[0].ptr, m.out_types[0], m.output_elems(0, b), out.num_detections.data());
        to_float(slot->h_out[1].ptr, m.out_types[1], m.output_elems(1, b), out.boxes.data());
        to_float(slot->h_out[2].ptr, m.out_types[2], m.output_elems(2, b), out.scores.data());
        if (m.has_output[3]) {
            to_float(slot->h_out[3].ptr, m.out_types[3], m.output_elems(3, b), out.mask_scores.data());
        } else {
            out.mask_scores.clear();
        }
        to_int32(slot->h_out[4].ptr, m.out_types[4], m.output_elems(4, b), out.classes.data());
        to_float(slot->h_out[5].ptr, m.out_types[5], m.output_elems(5, b), out.masks.data());
    } catch (...) {
        m.release(*slot);
        throw;
    }
    m.release(*slot);
    return out;
}

BatchOutputs TensorRTEngine::run(const std::vector<ImageView>& images) { return collect(submit(images)); }

}  // namespace yolact
