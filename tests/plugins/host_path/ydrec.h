// Control API of the recording stand-in for the CUDA runtime (recording_cudart.cpp).
//
// The stand-in provides the cudart entry points that nvcc-built host code imports (fatbinary and
// kernel registration, launches, device/function attribute queries, memcpy/memset/sync/malloc and
// errors), answers every query as the selected GPU would, performs no GPU work and records each call.
// "Device memory" is host memory in a reserved address range, so pointers can be attributed to the
// buffers a test allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ydrec
{

struct Gpu
{
    char const* name;
    int sm;               // compute capability * 10 + minor
    int smCount;
    int smemPerBlock;     // default limit (48 KiB)
    int smemPerBlockOptin;
    int smemPerSm;
    int threadsPerSm;
    int blocksPerSm;
    int l2Bytes;
};

// The GPUs a test can answer as (public specifications). Device ordinal = index in this list.
std::vector<Gpu> const& gpus();
// Selects the answering GPU (cudaSetDevice(ordinal) semantics); false for an unknown name.
bool selectGpu(std::string const& name);
// SM targets the objects were compiled for ("75;80;...") and the one that also has PTX: decides
// binaryVersion/ptxVersion and "no kernel image" exactly as the runtime's image selection does.
void setCompiledArchs(std::string const& sass, int ptxArch);
// Kernel parameter layouts and launch bounds from `cuobjdump -ptx` output; returns kernels read.
int loadPtx(std::string const& path);

// Device buffers (in the reserved range, with unmapped gaps between them).
void* deviceAlloc(size_t bytes, std::string const& label);
void deviceFreeAll();

enum Kind
{
    kLaunch,
    kSync,      // stream, device or event synchronisation, or a synchronous memcpy
    kAlloc,     // cudaMalloc*, cudaFree*, cudaMallocHost...
    kCopyToHost,
    kCopyOther,
    kMemset,
    kBadLaunch, // empty grid/block, over the device's limits, unknown kernel, no image
    kBadPointer,// a kernel argument pointing into the device range outside every test buffer
    kUnchecked, // a launch whose parameter layout was not in the PTX file
    kQuery,     // attribute queries the stand-in could not answer
    kNumKinds
};

struct Event
{
    Kind kind;
    std::string what;
};

void resetLog();
std::vector<Event> const& log();
int count(Kind kind);
// Buffers (labels) the launches since resetLog pointed into, in first-use order.
std::vector<std::string> touchedBuffers();

// Fault injection: the next kernel launch fails with err; a pending error before the next call.
void failNextLaunch(int err);
void setPendingError(int err);
int pendingError(); // cudaPeekAtLastError without clearing
void failAttributeQueries(bool on);

} // namespace ydrec
