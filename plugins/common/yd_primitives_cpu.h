// CPU implementations of the scratch-using primitives (see yd_primitives_cuda.cuh for the GPU ones).
// Contracts, identical on both backends:
//   segmentedStableSortDesc(buffers): for each segment s, items [begin[s], end[s)) of the current
//     (keys, vals) pair are sorted by key descending into one of the two buffers, equal keys keeping
//     their input order; buffers.current then names the buffer that holds the result (which one is
//     the backend's choice: CUB's double-buffer mode picks it from its pass count). Keys must not be
//     NaN. Items outside every segment are unspecified afterwards in both buffers.
//   exclusiveScan: out[i] = in[0] + ... + in[i-1], out[0] = 0.
#pragma once

#include "yd_exec.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace yd
{

inline Status segmentedStableSortDesc(CpuExec, SortBuffers& buf, int64_t /*numItems*/, int64_t numSegments,
    int32_t const* begin, int32_t const* end, void* /*temp*/, size_t /*tempBytes*/)
{
    float const* keysIn = buf.keys[buf.current];
    int32_t const* valsIn = buf.vals[buf.current];
    float* keysOut = buf.keys[1 - buf.current];
    int32_t* valsOut = buf.vals[1 - buf.current];
    std::vector<int32_t> order;
    for (int64_t s = 0; s < numSegments; ++s)
    {
        int32_t const b = begin[s];
        int32_t const e = end[s];
        if (e <= b)
        {
            continue;
        }
        order.resize(static_cast<size_t>(e - b));
        std::iota(order.begin(), order.end(), b);
        std::stable_sort(order.begin(), order.end(), [keysIn](int32_t i, int32_t j) { return keysIn[i] > keysIn[j]; });
        for (int32_t i = b; i < e; ++i)
        {
            keysOut[i] = keysIn[order[static_cast<size_t>(i - b)]];
            valsOut[i] = valsIn[order[static_cast<size_t>(i - b)]];
        }
    }
    buf.current = 1 - buf.current;
    return kSUCCESS;
}

inline Status exclusiveScan(CpuExec, int32_t const* in, int32_t* out, int64_t n, void* /*temp*/, size_t /*tempBytes*/)
{
    std::exclusive_scan(in, in + n, out, int32_t{0});
    return kSUCCESS;
}

} // namespace yd
