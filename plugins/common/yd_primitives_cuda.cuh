// CUDA implementations of the scratch-using primitives, on CUB with caller-provided scratch memory
// (TensorRT's workspace): no allocation and no synchronisation inside enqueue. The contracts are
// stated in yd_primitives_cpu.h. Counts are passed to CUB as int (older CUB takes int); the callers
// keep them below 2^31.
#pragma once

#include "yd_exec.h"

#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>

namespace yd
{

// Scratch bytes CUB needs for segmentedStableSortDesc over numItems items in numSegments segments.
inline size_t segmentedSortTempBytes(int64_t numItems, int64_t numSegments)
{
    size_t bytes = 0;
    cudaError_t const e = cub::DeviceSegmentedSort::StableSortPairsDescending(nullptr, bytes,
        static_cast<float const*>(nullptr), static_cast<float*>(nullptr), static_cast<int32_t const*>(nullptr),
        static_cast<int32_t*>(nullptr), static_cast<int>(numItems), static_cast<int>(numSegments),
        static_cast<int32_t const*>(nullptr),
        static_cast<int32_t const*>(nullptr));
    return e == cudaSuccess ? bytes : 0;
}

inline size_t exclusiveScanTempBytes(int64_t n)
{
    size_t bytes = 0;
    cudaError_t const e = cub::DeviceScan::ExclusiveSum(nullptr, bytes, static_cast<int32_t const*>(nullptr),
        static_cast<int32_t*>(nullptr), static_cast<int>(n));
    return e == cudaSuccess ? bytes : 0;
}

inline Status segmentedStableSortDesc(CudaExec exec, float const* keysIn, float* keysOut, int32_t const* valsIn,
    int32_t* valsOut, int64_t numItems, int64_t numSegments, int32_t const* begin, int32_t const* end, void* temp,
    size_t tempBytes)
{
    if (numItems <= 0 || numSegments <= 0)
    {
        return kSUCCESS;
    }
    size_t needed = 0;
    if (cub::DeviceSegmentedSort::StableSortPairsDescending(nullptr, needed, keysIn, keysOut, valsIn, valsOut,
            static_cast<int>(numItems), static_cast<int>(numSegments), begin, end, exec.stream)
        != cudaSuccess)
    {
        return kBACKEND_ERROR;
    }
    if (needed > tempBytes)
    {
        return kWORKSPACE_TOO_SMALL;
    }
    cudaError_t const e = cub::DeviceSegmentedSort::StableSortPairsDescending(temp, tempBytes, keysIn, keysOut,
        valsIn, valsOut, static_cast<int>(numItems), static_cast<int>(numSegments), begin, end, exec.stream);
    return e == cudaSuccess ? kSUCCESS : kBACKEND_ERROR;
}

inline Status exclusiveScan(CudaExec exec, int32_t const* in, int32_t* out, int64_t n, void* temp, size_t tempBytes)
{
    if (n <= 0)
    {
        return kSUCCESS;
    }
    size_t needed = 0;
    int const count = static_cast<int>(n); // callers keep n below 2^31 (checkFastNmsParams)
    if (cub::DeviceScan::ExclusiveSum(nullptr, needed, in, out, count, exec.stream) != cudaSuccess)
    {
        return kBACKEND_ERROR;
    }
    if (needed > tempBytes)
    {
        return kWORKSPACE_TOO_SMALL;
    }
    return cub::DeviceScan::ExclusiveSum(temp, tempBytes, in, out, count, exec.stream) == cudaSuccess
        ? kSUCCESS
        : kBACKEND_ERROR;
}

} // namespace yd
