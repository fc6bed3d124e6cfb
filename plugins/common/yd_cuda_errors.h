// Error attribution for the CUDA entry points (host code; nvcc or g++ with the CUDA headers).
//
// cudaGetLastError/cudaPeekAtLastError report the last error of *any* runtime call of this host
// thread, and CUB checks its own launches with cudaPeekAtLastError: an error some other code left
// pending would make our call fail, or one of ours would be reported to the next caller. So each
// entry point clears a pending (non-sticky) error on entry and takes (reads and clears) its own on
// exit. Sticky errors (a faulted context) cannot be cleared and are reported by every later call.
#pragma once

#include <cuda_runtime_api.h>

namespace yd
{
namespace gpu
{

struct ClearStaleError
{
    ClearStaleError()
    {
        (void) cudaGetLastError();
    }
};

// True when a launch since the last clear failed; clears it.
inline bool takeLaunchError()
{
    return cudaGetLastError() != cudaSuccess;
}

} // namespace gpu
} // namespace yd
