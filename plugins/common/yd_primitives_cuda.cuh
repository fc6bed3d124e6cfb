// CUDA implementations of the scratch-using primitives, on CUB with caller-provided scratch memory
// (TensorRT's workspace). The contracts are stated in yd_primitives_cpu.h.
//
// Neither primitive may synchronise, allocate or copy to the host, for any shape (checked on the
// CPU by tests/plugins/host_path). Which code path CUB takes, from its sources (CUB 2.5.0 = CUDA
// 12.6 / JetPack 6, 2.8.2 = CUDA 12.9, 3.0.1 = CUDA 13.0):
// * cub::DeviceSegmentedSort (dispatch_segmented_sort.cuh): with more segments than the policy's
//   PARTITIONING_THRESHOLD (300 in the SM 3.5/5.0 policies, 500 from SM 6.0 on, in all three
//   versions) it partitions the segments and copies the group sizes to the host followed by a stream
//   synchronize (SortWithPartitioning: cudaMemcpyAsync + SyncStream). At or below the threshold it
//   takes SortWithoutPartitioning: one launch of DeviceSegmentedSortFallbackKernel, one block per
//   segment, no host round trip. We therefore never hand CUB more than kMaxSegmentsPerSort = 300
//   segments per call, and use the DoubleBuffer overload (is_overwrite_okay): its temp storage
//   holds no copy of the keys/values, and the buffer holding the result is chosen on the host from
//   the pass count (GetFinalSelector), without reading device memory.
// * cub::DeviceScan::ExclusiveSum (dispatch_scan.cuh): the single-pass decoupled look-back scan, an
//   init kernel and a scan kernel, no host round trip.
// Counts are int64 in CUB 3.x and int in 2.x; callers keep them below 2^31 (checkFastNmsParams).
#pragma once

#include "yd_exec.h"

#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>

namespace yd
{

// The smallest PARTITIONING_THRESHOLD of any segmented-sort policy of the CUB versions above.
constexpr int64_t kMaxSegmentsPerSort = 300;

namespace detail
{
inline cudaError_t sortChunk(void* temp, size_t& tempBytes, SortBuffers& buf, int64_t numItems, int64_t numSegments,
    int32_t const* begin, int32_t const* end, cudaStream_t stream)
{
    cub::DoubleBuffer<float> keys(buf.keys[buf.current], buf.keys[1 - buf.current]);
    cub::DoubleBuffer<int32_t> vals(buf.vals[buf.current], buf.vals[1 - buf.current]);
    cudaError_t const e = cub::DeviceSegmentedSort::StableSortPairsDescending(temp, tempBytes, keys, vals,
        static_cast<int>(numItems), static_cast<int>(numSegments), begin, end, stream);
    if (e == cudaSuccess && temp != nullptr)
    {
        if (keys.selector != vals.selector)
        {
            return cudaErrorUnknown; // CUB moves keys and values together; anything else is a bug
        }
        buf.current = keys.Current() == buf.keys[0] ? 0 : 1;
    }
    return e;
}
} // namespace detail

// Scratch bytes CUB needs for segmentedStableSortDesc; false when CUB's size query fails.
inline bool segmentedSortTempBytes(int64_t numItems, int64_t numSegments, size_t& bytes)
{
    SortBuffers none{{nullptr, nullptr}, {nullptr, nullptr}, 0};
    bytes = 0;
    int64_t const perCall = numSegments < kMaxSegmentsPerSort ? numSegments : kMaxSegmentsPerSort;
    return detail::sortChunk(nullptr, bytes, none, numItems, perCall, nullptr, nullptr, nullptr) == cudaSuccess;
}

inline bool exclusiveScanTempBytes(int64_t n, size_t& bytes)
{
    bytes = 0;
    return cub::DeviceScan::ExclusiveSum(nullptr, bytes, static_cast<int32_t const*>(nullptr),
               static_cast<int32_t*>(nullptr), static_cast<int>(n))
        == cudaSuccess;
}

inline Status segmentedStableSortDesc(CudaExec exec, SortBuffers& buf, int64_t numItems, int64_t numSegments,
    int32_t const* begin, int32_t const* end, void* temp, size_t tempBytes)
{
    if (numItems <= 0 || numSegments <= 0)
    {
        return kSUCCESS;
    }
    size_t needed = 0;
    if (!segmentedSortTempBytes(numItems, numSegments, needed))
    {
        return kBACKEND_ERROR;
    }
    if (needed > tempBytes)
    {
        return kWORKSPACE_TOO_SMALL;
    }
    // Every chunk starts from the same buffer and ends in the same one (the pass count depends only
    // on the key type and the policy), so the chunks together leave all segments in buf.current.
    int32_t const start = buf.current;
    int32_t result = start;
    for (int64_t first = 0; first < numSegments; first += kMaxSegmentsPerSort)
    {
        int64_t const count = ydMin(kMaxSegmentsPerSort, numSegments - first);
        buf.current = start;
        size_t bytes = tempBytes;
        if (detail::sortChunk(temp, bytes, buf, numItems, count, begin + first, end + first, exec.stream) != cudaSuccess)
        {
            return kBACKEND_ERROR;
        }
        if (first > 0 && buf.current != result)
        {
            return kBACKEND_ERROR;
        }
        result = buf.current;
    }
    return kSUCCESS;
}

inline Status exclusiveScan(CudaExec exec, int32_t const* in, int32_t* out, int64_t n, void* temp, size_t tempBytes)
{
    if (n <= 0)
    {
        return kSUCCESS;
    }
    size_t needed = 0;
    if (!exclusiveScanTempBytes(n, needed))
    {
        return kBACKEND_ERROR;
    }
    if (needed > tempBytes)
    {
        return kWORKSPACE_TOO_SMALL;
    }
    return cub::DeviceScan::ExclusiveSum(temp, tempBytes, in, out, static_cast<int>(n), exec.stream) == cudaSuccess
        ? kSUCCESS
        : kBACKEND_ERROR;
}

} // namespace yd
