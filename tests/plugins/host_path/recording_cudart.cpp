// Recording stand-in for the CUDA runtime (see ydrec.h). Linked instead of libcudart into
// yd_host_path_test, so the plugins' nvcc-built host code (our launches, Thrust, CUB) runs on the CPU
// exactly as it would before reaching a GPU.
#include "ydrec.h"

#include <cuda_runtime_api.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace ydrec
{
namespace
{

std::vector<Gpu> const kGpus = {
    // name           sm  SMs  smem/blk optin   smem/SM threads/SM blocks/SM L2
    {"T4", 75, 40, 49152, 65536, 65536, 1024, 16, 4 << 20},
    {"A100", 80, 108, 49152, 166912, 167936, 2048, 32, 40 << 20},
    {"A10", 86, 72, 49152, 101376, 102400, 1536, 16, 6 << 20},
    {"RTX3090", 86, 82, 49152, 101376, 102400, 1536, 16, 6 << 20},
    {"JetsonOrin", 87, 16, 49152, 166912, 167936, 1536, 16, 4 << 20},
    {"L4", 89, 58, 49152, 101376, 102400, 1536, 24, 48 << 20},
    {"RTX4090", 89, 128, 49152, 101376, 102400, 1536, 24, 72 << 20},
    {"H100", 90, 132, 49152, 232448, 233472, 2048, 32, 50 << 20},
    {"H200", 90, 132, 49152, 232448, 233472, 2048, 32, 50 << 20},
    {"B200", 100, 148, 49152, 232448, 233472, 2048, 32, 126 << 20},
    {"JetsonThor", 110, 20, 49152, 232448, 233472, 1536, 24, 32 << 20},
    {"RTX5090", 120, 170, 49152, 101376, 102400, 1536, 24, 96 << 20},
};

struct KernelInfo
{
    std::vector<size_t> paramSizes;
    int maxThreads = 0; // .maxntid / .reqntid product, 0 = none
};

struct Buffer
{
    uintptr_t begin;
    uintptr_t end;
    std::string label;
};

struct State
{
    std::mutex mutex;
    int device = 0;
    std::vector<int> sass{75, 80, 86, 87, 89, 90};
    int ptxArch = 90;
    std::map<void const*, std::string> functions; // host stub -> mangled device name
    std::map<std::string, KernelInfo> kernels;    // from the PTX file
    bool havePtx = false;
    std::vector<Event> events;
    std::vector<std::string> touched;
    std::vector<Buffer> buffers;
    char* arena = nullptr;
    size_t arenaBytes = size_t{64} << 30;
    size_t arenaUsed = 0;
    int failLaunch = 0;
    bool failQueries = false;
};

State& state()
{
    static State s;
    return s;
}

thread_local cudaError_t tLastError = cudaSuccess;

struct CallConfig
{
    dim3 grid;
    dim3 block;
    size_t smem;
    void* stream;
};
thread_local std::vector<CallConfig> tConfigs;

cudaError_t setError(cudaError_t e)
{
    if (e != cudaSuccess)
    {
        tLastError = e;
    }
    return e;
}

void record(Kind kind, std::string what)
{
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.events.push_back({kind, std::move(what)});
}

Gpu const& gpu()
{
    return kGpus[static_cast<size_t>(state().device)];
}

// The device range sits at a fixed address whose upper 32 bits (0x5e3b..) are neither a host address
// nor a plausible integer, and buffers only use the [0x80000000, 0xf0000000) part of each 4 GiB
// window. A kernel argument word counts as a device pointer only there: struct padding (stale stack
// bytes next to an int or a bool) or small/negative integers then cannot pass for one.
constexpr uintptr_t kArenaBase = uintptr_t{0x5e3b} << 32;
constexpr size_t kWindowLow = 0x80000000u;
constexpr size_t kWindowHigh = 0xf0000000u;

bool inArena(uintptr_t p)
{
    State& s = state();
    return s.arena != nullptr && p >= reinterpret_cast<uintptr_t>(s.arena)
        && p < reinterpret_cast<uintptr_t>(s.arena) + s.arenaBytes;
}

bool isDevicePointer(uint64_t word)
{
    uint64_t const low = word & 0xffffffffu;
    return inArena(static_cast<uintptr_t>(word)) && low >= kWindowLow && low <= kWindowHigh;
}

Buffer const* bufferOf(uintptr_t p)
{
    for (Buffer const& b : state().buffers)
    {
        if (p >= b.begin && p <= b.end) // one past the end is a valid end pointer
        {
            return &b;
        }
    }
    return nullptr;
}

// The image the runtime would load for the selected GPU: a cubin of the same major and a minor
// not above the device's, else the PTX (JIT) if its arch is not above the device's.
bool imageFor(int& binaryVersion, int& ptxVersion)
{
    int const sm = gpu().sm;
    int best = -1;
    for (int a : state().sass)
    {
        if (a / 10 == sm / 10 && a <= sm && a > best)
        {
            best = a;
        }
    }
    if (best >= 0)
    {
        binaryVersion = best;
        ptxVersion = best;
        return true;
    }
    if (state().ptxArch > 0 && state().ptxArch <= sm)
    {
        binaryVersion = sm;
        ptxVersion = state().ptxArch;
        return true;
    }
    return false;
}

std::string dimText(dim3 d)
{
    return std::to_string(d.x) + "x" + std::to_string(d.y) + "x" + std::to_string(d.z);
}

std::string shortName(std::string const& mangled)
{
    // Enough to tell kernels apart in a report: the functor or CUB kernel name inside the mangling.
    for (char const* key : {"Functor", "Kernel", "kernel"})
    {
        size_t const at = mangled.find(key);
        if (at != std::string::npos)
        {
            size_t begin = at;
            while (begin > 0 && std::isalnum(static_cast<unsigned char>(mangled[begin - 1])) != 0)
            {
                --begin;
            }
            while (std::isdigit(static_cast<unsigned char>(mangled[begin])) != 0)
            {
                ++begin; // the length prefix of the mangled identifier
            }
            return mangled.substr(begin, at + std::strlen(key) - begin);
        }
    }
    return mangled.substr(0, 60);
}

cudaError_t launch(void const* fun, dim3 grid, dim3 block, void** args, size_t smem, void* /*stream*/)
{
    State& s = state();
    auto const f = s.functions.find(fun);
    if (f == s.functions.end())
    {
        record(kBadLaunch, "launch of an unregistered function");
        return setError(cudaErrorInvalidDeviceFunction);
    }
    std::string const name = shortName(f->second);
    std::string const what = name + " grid " + dimText(grid) + " block " + dimText(block) + " smem "
        + std::to_string(smem);
    int bin = 0, ptx = 0;
    if (!imageFor(bin, ptx))
    {
        record(kBadLaunch, what + ": no kernel image for sm_" + std::to_string(gpu().sm));
        return setError(cudaErrorNoKernelImageForDevice);
    }
    record(kLaunch, what);
    if (s.failLaunch != 0)
    {
        cudaError_t const e = static_cast<cudaError_t>(s.failLaunch);
        s.failLaunch = 0;
        return setError(e);
    }
    uint64_t const threads = uint64_t{block.x} * block.y * block.z;
    std::string bad;
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0)
    {
        bad = "empty grid or block";
    }
    else if (grid.x > 2147483647u || grid.y > 65535u || grid.z > 65535u)
    {
        bad = "grid over the device limit";
    }
    else if (threads > 1024 || block.z > 64)
    {
        bad = "block over the device limit";
    }
    else if (smem > static_cast<size_t>(gpu().smemPerBlockOptin))
    {
        bad = "dynamic shared memory over the device's opt-in limit";
    }
    else if (smem > static_cast<size_t>(gpu().smemPerBlock))
    {
        bad = "dynamic shared memory over 48 KiB without cudaFuncSetAttribute";
    }
    auto const k = s.kernels.find(f->second);
    // Launch bounds differ per architecture (CUB tunes per SM); the PTX only has those of its own
    // target, so they apply when the device runs that PTX (or SASS built from the same target).
    if (bad.empty() && k != s.kernels.end() && k->second.maxThreads > 0 && ptx == s.ptxArch
        && threads > static_cast<uint64_t>(k->second.maxThreads))
    {
        bad = "block larger than the kernel's launch bounds (" + std::to_string(k->second.maxThreads) + ")";
    }
    if (!bad.empty())
    {
        record(kBadLaunch, what + ": " + bad);
        return setError(cudaErrorInvalidConfiguration);
    }
    if (k == s.kernels.end())
    {
        record(kUnchecked, what + ": parameter layout unknown (" + (s.havePtx ? "not in the PTX" : "no PTX given") + ")");
        return cudaSuccess;
    }
    // Every 8-byte-aligned word of every parameter that points into the device range must point into
    // a buffer the test allocated: scratch memory outside the workspace would show up here.
    for (size_t i = 0; i < k->second.paramSizes.size(); ++i)
    {
        size_t const bytes = k->second.paramSizes[i];
        for (size_t off = 0; off + 8 <= bytes; off += 8)
        {
            uint64_t word;
            std::memcpy(&word, static_cast<char const*>(args[i]) + off, 8);
            if (!isDevicePointer(word))
            {
                continue;
            }
            Buffer const* b = bufferOf(word);
            if (b == nullptr)
            {
                char text[64];
                std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(word));
                record(kBadPointer, what + ": parameter " + std::to_string(i) + " points to " + text
                        + ", outside every buffer");
            }
            else if (std::find(s.touched.begin(), s.touched.end(), b->label) == s.touched.end())
            {
                s.touched.push_back(b->label);
            }
        }
    }
    return cudaSuccess;
}

size_t paramBytes(std::string const& line)
{
    size_t const lb = line.find('[');
    size_t elem = 1;
    for (auto const& t : {std::make_pair(".u64", 8), {".s64", 8}, {".b64", 8}, {".f64", 8}, {".u32", 4},
             {".s32", 4}, {".b32", 4}, {".f32", 4}, {".u16", 2}, {".s16", 2}, {".b16", 2}, {".f16", 2},
             {".u8", 1}, {".s8", 1}, {".b8", 1}})
    {
        if (line.find(t.first) != std::string::npos)
        {
            elem = static_cast<size_t>(t.second);
            break;
        }
    }
    if (lb != std::string::npos)
    {
        return elem * std::stoull(line.substr(lb + 1));
    }
    return elem;
}

} // namespace

std::vector<Gpu> const& gpus()
{
    return kGpus;
}

bool selectGpu(std::string const& name)
{
    for (size_t i = 0; i < kGpus.size(); ++i)
    {
        if (name == kGpus[i].name)
        {
            state().device = static_cast<int>(i);
            return true;
        }
    }
    return false;
}

void setCompiledArchs(std::string const& sass, int ptxArch)
{
    State& s = state();
    s.sass.clear();
    std::stringstream in(sass);
    std::string item;
    while (std::getline(in, item, ';'))
    {
        if (!item.empty())
        {
            s.sass.push_back(std::stoi(item));
        }
    }
    s.ptxArch = ptxArch;
}

int loadPtx(std::string const& path)
{
    State& s = state();
    std::ifstream in(path);
    std::string line;
    std::string current;
    bool inParams = false;
    int n = 0;
    while (std::getline(in, line))
    {
        size_t const entry = line.find(".entry ");
        if (entry != std::string::npos)
        {
            size_t const begin = entry + 7;
            size_t const end = line.find_first_of("( ", begin);
            current = line.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
            s.kernels[current] = KernelInfo{};
            inParams = true;
            ++n;
            continue;
        }
        if (current.empty())
        {
            continue;
        }
        if (inParams && line.find(".param") != std::string::npos)
        {
            s.kernels[current].paramSizes.push_back(paramBytes(line));
        }
        else if (inParams && line.find(')') != std::string::npos)
        {
            inParams = false;
        }
        else if (line.find(".maxntid") != std::string::npos || line.find(".reqntid") != std::string::npos)
        {
            std::stringstream dims(line.substr(line.find("ntid") + 4));
            int product = 1, v = 0;
            char comma = 0;
            while (dims >> v)
            {
                product *= v;
                dims >> comma;
            }
            s.kernels[current].maxThreads = product;
        }
        else if (line.find('{') != std::string::npos)
        {
            current.clear();
        }
    }
    s.havePtx = n > 0;
    return n;
}

void* tryAlloc(size_t bytes, std::string const& label)
{
    State& s = state();
    if (s.arena == nullptr)
    {
        void* p = mmap(reinterpret_cast<void*>(kArenaBase), s.arenaBytes, PROT_NONE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != reinterpret_cast<void*>(kArenaBase))
        {
            std::fprintf(stderr, "recording cudart: cannot reserve the device range at 0x%llx\n",
                static_cast<unsigned long long>(kArenaBase));
            return nullptr;
        }
        s.arena = static_cast<char*>(p);
    }
    // Buffers live only in [kWindowLow, kWindowHigh) of each 4 GiB window (see isDevicePointer), with
    // an unmapped 1 MiB gap after each.
    size_t const gap = size_t{1} << 20;
    size_t const rounded = (std::max<size_t>(bytes, 1) + gap - 1) / gap * gap;
    if (rounded + gap > kWindowHigh - kWindowLow)
    {
        return nullptr;
    }
    size_t window = s.arenaUsed >> 32;
    size_t low = s.arenaUsed & 0xffffffffu;
    if (low < kWindowLow || low + rounded + gap > kWindowHigh)
    {
        window += low < kWindowLow ? 0 : 1;
        low = kWindowLow;
    }
    size_t const offset = (window << 32) + low;
    if (offset + rounded + gap > s.arenaBytes)
    {
        return nullptr;
    }
    char* p = s.arena + offset;
    if (mprotect(p, rounded, PROT_READ | PROT_WRITE) != 0)
    {
        return nullptr;
    }
    s.arenaUsed = offset + rounded + gap; // the gap stays unmapped
    s.buffers.push_back({reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + bytes, label});
    return p;
}

void* deviceAlloc(size_t bytes, std::string const& label)
{
    void* p = tryAlloc(bytes, label);
    if (p == nullptr)
    {
        std::fprintf(stderr, "recording cudart: cannot place a %zu-byte buffer (%s)\n", bytes, label.c_str());
        std::exit(1);
    }
    return p;
}

void deviceFreeAll()
{
    State& s = state();
    if (s.arena != nullptr)
    {
        // Give the pages back and make the range inaccessible again.
        mmap(s.arena, s.arenaBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
        s.arenaUsed = 0;
    }
    s.arenaUsed = 0;
    s.buffers.clear();
}

void resetLog()
{
    state().events.clear();
    state().touched.clear();
}

std::vector<Event> const& log()
{
    return state().events;
}

int count(Kind kind)
{
    int n = 0;
    for (Event const& e : state().events)
    {
        n += e.kind == kind ? 1 : 0;
    }
    return n;
}

std::vector<std::string> touchedBuffers()
{
    return state().touched;
}

void failNextLaunch(int err)
{
    state().failLaunch = err;
}

void setPendingError(int err)
{
    tLastError = static_cast<cudaError_t>(err);
}

int pendingError()
{
    return tLastError;
}

void failAttributeQueries(bool on)
{
    state().failQueries = on;
}

} // namespace ydrec

using namespace ydrec;

// ---- the runtime entry points ----------------------------------------------------------------------
extern "C" {

void** __cudaRegisterFatBinary(void* /*fatCubin*/)
{
    static void* handle = nullptr;
    return &handle;
}

void __cudaRegisterFatBinaryEnd(void** /*handle*/) {}

void __cudaUnregisterFatBinary(void** /*handle*/) {}

void __cudaRegisterFunction(void** /*handle*/, char const* hostFun, char* /*deviceFun*/, char const* deviceName,
    int /*threadLimit*/, uint3* /*tid*/, uint3* /*bid*/, dim3* /*bDim*/, dim3* /*gDim*/, int* /*wSize*/)
{
    state().functions[hostFun] = deviceName;
}

void __cudaRegisterVar(void** /*handle*/, char* /*hostVar*/, char* /*deviceAddress*/, char const* /*deviceName*/,
    int /*ext*/, size_t /*size*/, int /*constant*/, int /*global*/)
{
}

unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block, size_t smem, void* stream)
{
    tConfigs.push_back({grid, block, smem, stream});
    return 0;
}

cudaError_t __cudaPopCallConfiguration(dim3* grid, dim3* block, size_t* smem, void* stream)
{
    if (tConfigs.empty())
    {
        return cudaErrorMissingConfiguration;
    }
    CallConfig const c = tConfigs.back();
    tConfigs.pop_back();
    *grid = c.grid;
    *block = c.block;
    *smem = c.smem;
    *static_cast<void**>(stream) = c.stream;
    return cudaSuccess;
}

cudaError_t __cudaGetKernel(cudaKernel_t* kernel, void const* fun)
{
    *kernel = reinterpret_cast<cudaKernel_t>(const_cast<void*>(fun)); // the stub address is our handle
    return cudaSuccess;
}

cudaError_t __cudaLaunchKernel(
    cudaKernel_t kernel, dim3 grid, dim3 block, void** args, size_t smem, cudaStream_t stream)
{
    return launch(reinterpret_cast<void const*>(kernel), grid, block, args, smem, stream);
}

cudaError_t cudaLaunchKernel(void const* func, dim3 grid, dim3 block, void** args, size_t smem, cudaStream_t stream)
{
    return launch(func, grid, block, args, smem, stream);
}

// CUB 3.x launches through cudaLaunchKernelEx when the targets include SM 9.0 (programmatic dependent
// launch attributes); the attributes change nothing the checks look at.
cudaError_t cudaLaunchKernelExC(cudaLaunchConfig_t const* config, void const* func, void** args)
{
    return launch(func, config->gridDim, config->blockDim, args, config->dynamicSmemBytes, config->stream);
}

cudaError_t cudaGetDevice(int* device)
{
    if (state().failQueries)
    {
        return setError(cudaErrorInvalidValue); // CUB asks for the device before its attribute cache
    }
    *device = state().device;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    if (device < 0 || device >= static_cast<int>(kGpus.size()))
    {
        return setError(cudaErrorInvalidDevice);
    }
    state().device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count)
{
    *count = static_cast<int>(kGpus.size());
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device)
{
    if (state().failQueries)
    {
        return setError(cudaErrorInvalidValue);
    }
    if (device < 0 || device >= static_cast<int>(kGpus.size()))
    {
        return setError(cudaErrorInvalidDevice);
    }
    Gpu const& g = kGpus[static_cast<size_t>(device)];
    switch (attr)
    {
    case cudaDevAttrComputeCapabilityMajor: *value = g.sm / 10; break;
    case cudaDevAttrComputeCapabilityMinor: *value = g.sm % 10; break;
    case cudaDevAttrMultiProcessorCount: *value = g.smCount; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = g.smemPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = g.smemPerBlockOptin; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = g.smemPerSm; break;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxBlockDimX:
    case cudaDevAttrMaxBlockDimY: *value = 1024; break;
    case cudaDevAttrMaxBlockDimZ: *value = 64; break;
    case cudaDevAttrMaxGridDimX: *value = 2147483647; break;
    case cudaDevAttrMaxGridDimY:
    case cudaDevAttrMaxGridDimZ: *value = 65535; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMaxRegistersPerBlock:
    case cudaDevAttrMaxRegistersPerMultiprocessor: *value = 65536; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = g.threadsPerSm; break;
    case cudaDevAttrMaxBlocksPerMultiprocessor: *value = g.blocksPerSm; break;
    case cudaDevAttrL2CacheSize: *value = g.l2Bytes; break;
    default:
        record(kQuery, "cudaDeviceGetAttribute(" + std::to_string(static_cast<int>(attr)) + ") not answered");
        return setError(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, void const* func)
{
    if (state().failQueries)
    {
        return setError(cudaErrorInvalidValue);
    }
    auto const f = state().functions.find(func);
    if (f == state().functions.end())
    {
        return setError(cudaErrorInvalidDeviceFunction);
    }
    std::memset(attr, 0, sizeof *attr);
    if (!imageFor(attr->binaryVersion, attr->ptxVersion))
    {
        return setError(cudaErrorNoKernelImageForDevice);
    }
    auto const k = state().kernels.find(f->second);
    attr->maxThreadsPerBlock = k != state().kernels.end() && k->second.maxThreads > 0 && attr->ptxVersion == state().ptxArch
        ? k->second.maxThreads
        : 1024;
    attr->maxDynamicSharedSizeBytes = gpu().smemPerBlock;
    // Registers and static shared memory live in the SASS; they are not known here (see README).
    return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(void const* /*func*/, cudaFuncAttribute attr, int /*value*/)
{
    record(kQuery, "cudaFuncSetAttribute(" + std::to_string(static_cast<int>(attr)) + ")");
    return cudaSuccess;
}

cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
    int* numBlocks, void const* /*func*/, int blockSize, size_t dynamicSMemSize, unsigned int /*flags*/)
{
    if (state().failQueries)
    {
        return setError(cudaErrorInvalidValue);
    }
    Gpu const& g = gpu();
    int const warps = (blockSize + 31) / 32;
    int n = std::min(g.blocksPerSm, g.threadsPerSm / std::max(1, warps * 32));
    if (dynamicSMemSize > 0)
    {
        n = std::min(n, static_cast<int>(static_cast<size_t>(g.smemPerSm) / dynamicSMemSize));
    }
    *numBlocks = blockSize > 1024 ? 0 : n;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t const e = tLastError;
    tLastError = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void)
{
    return tLastError;
}

char const* cudaGetErrorName(cudaError_t error)
{
    switch (error)
    {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoKernelImageForDevice: return "cudaErrorNoKernelImageForDevice";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    default: return "cudaError (recording runtime)";
    }
}

char const* cudaGetErrorString(cudaError_t error)
{
    return cudaGetErrorName(error);
}

cudaError_t cudaStreamSynchronize(cudaStream_t /*stream*/)
{
    record(kSync, "cudaStreamSynchronize");
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    record(kSync, "cudaDeviceSynchronize");
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t /*event*/)
{
    record(kSync, "cudaEventSynchronize");
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, void const* src, size_t count, cudaMemcpyKind kind, cudaStream_t /*stream*/)
{
    bool const toHost = inArena(reinterpret_cast<uintptr_t>(src)) && !inArena(reinterpret_cast<uintptr_t>(dst));
    record(toHost ? kCopyToHost : kCopyOther,
        "cudaMemcpyAsync " + std::to_string(count) + " bytes, kind " + std::to_string(static_cast<int>(kind)));
    std::memmove(dst, src, count);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, void const* src, size_t count, cudaMemcpyKind kind)
{
    record(kSync, "cudaMemcpy (synchronous)");
    return cudaMemcpyAsync(dst, src, count, kind, nullptr);
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t count, cudaStream_t /*stream*/)
{
    record(kMemset, "cudaMemsetAsync " + std::to_string(count) + " bytes");
    if (!inArena(reinterpret_cast<uintptr_t>(dst)) || bufferOf(reinterpret_cast<uintptr_t>(dst)) == nullptr)
    {
        record(kBadPointer, "cudaMemsetAsync outside every buffer");
        return cudaSuccess;
    }
    std::memset(dst, value, count);
    return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t size)
{
    record(kAlloc, "cudaMalloc " + std::to_string(size) + " bytes");
    *ptr = nullptr;
    return setError(cudaErrorMemoryAllocation);
}

cudaError_t cudaMallocAsync(void** ptr, size_t size, cudaStream_t /*stream*/)
{
    record(kAlloc, "cudaMallocAsync " + std::to_string(size) + " bytes");
    *ptr = nullptr;
    return setError(cudaErrorMemoryAllocation);
}

cudaError_t cudaFree(void* /*ptr*/)
{
    record(kAlloc, "cudaFree");
    return cudaSuccess;
}

cudaError_t cudaFreeAsync(void* /*ptr*/, cudaStream_t /*stream*/)
{
    record(kAlloc, "cudaFreeAsync");
    return cudaSuccess;
}

} // extern "C"
