// The parallel primitive every plugin core is written against: for-each over an index range.
//
// A core is a function template over an execution tag. CpuExec runs Thrust's CPP backend (g++, a
// serial loop); CudaExec runs Thrust's CUDA backend on a stream without synchronising. The functor
// bodies are YD_HD, so the CPU and the GPU instance execute the same arithmetic. Primitives that need
// scratch memory (segmented sort, scan) live next to each backend: yd_primitives_cpu.h and
// yd_primitives_cuda.cuh.
#pragma once

#include "yd_base.h"

#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#if defined(__CUDACC__)
#include <cuda_runtime_api.h>
#include <thrust/system/cuda/execution_policy.h>
#else
#include <thrust/system/cpp/execution_policy.h>
#endif

namespace yd
{

// Two (keys, vals) buffers of the same length for segmentedStableSortDesc; current (0 or 1) names
// the one holding the data.
struct SortBuffers
{
    float* keys[2];
    int32_t* vals[2];
    int32_t current;
};

#if defined(__CUDACC__)
// thrust::for_each_n on par_nosync (thrust/system/cuda/detail/for_each.h) is cub::DeviceFor::ForEachN,
// one kernel launch, followed by synchronize_optional(policy), which par_nosync skips; DeviceFor's
// SyncStream runs only when CUB's debug synchronisation is compiled in and fails (dispatch_for.cuh).
// Same in CCCL 2.5 (CUDA 12.6), 2.8 (12.9) and 3.0 (13.0); tests/plugins/host_path checks it.
struct CudaExec
{
    cudaStream_t stream;
};

template <class F>
void forEach(CudaExec exec, int64_t n, F const& f)
{
    if (n > 0)
    {
        thrust::for_each_n(thrust::cuda::par_nosync.on(exec.stream), thrust::counting_iterator<int64_t>(0), n, f);
    }
}
#else
struct CpuExec
{
};

template <class F>
void forEach(CpuExec, int64_t n, F const& f)
{
    if (n > 0)
    {
        thrust::for_each_n(thrust::cpp::par, thrust::counting_iterator<int64_t>(0), n, f);
    }
}
#endif

} // namespace yd
