// CUDA instance of YolactFastNMS: the same core as fast_nms_cpu.cpp, on Thrust's CUDA backend and CUB
// (segmented sort, scan) with all scratch memory in the caller's workspace.
#include "yd_primitives_cuda.cuh" // before the core: the primitives it calls for CudaExec

#include "fast_nms_core.h"
#include "yd_cuda_api.h"

namespace yd
{
namespace gpu
{
namespace
{

size_t tempBytes(FastNmsParams const& p)
{
    int64_t const s = nmsSegmentsPerImage(p);
    int64_t const k = nmsListLength(p);
    size_t const sort1 = segmentedSortTempBytes(p.batch * s * p.numPriors, p.batch * s);
    size_t const sort2 = segmentedSortTempBytes(p.batch * s * k, p.batch);
    size_t const scan = exclusiveScanTempBytes(p.batch * p.numPriors);
    return ydMax(ydMax(sort1, sort2), scan);
}

} // namespace

size_t fastNmsWorkspaceBytes(FastNmsParams const& p)
{
    if (checkFastNmsParams(p) != kSUCCESS)
    {
        return 0;
    }
    return fastNmsCarve(p, tempBytes(p), nullptr, nullptr);
}

Status fastNms(FastNmsParams const& p, DType dtype, void const* boxes, void const* scores, void* workspace,
    size_t workspaceBytes, int32_t* numDetections, void* outBoxes, void* outScores, int32_t* outClasses,
    int32_t* outIndices, cudaStream_t stream)
{
    try
    {
        Status s = checkFastNmsParams(p);
        if (s != kSUCCESS)
        {
            return s;
        }
        FastNmsWorkspace ws{};
        if (fastNmsCarve(p, tempBytes(p), workspace, &ws) > workspaceBytes)
        {
            return kWORKSPACE_TOO_SMALL;
        }
        CudaExec const exec{stream};
        if (dtype == DType::kFLOAT32)
        {
            FastNmsOutputs<F32> const out{numDetections, static_cast<float*>(outBoxes), static_cast<float*>(outScores),
                outClasses, outIndices};
            s = yd::fastNms<CudaExec, F32>(
                exec, p, static_cast<float const*>(boxes), static_cast<float const*>(scores), ws, out);
        }
        else if (dtype == DType::kFLOAT16)
        {
            FastNmsOutputs<F16> const out{numDetections, static_cast<uint16_t*>(outBoxes),
                static_cast<uint16_t*>(outScores), outClasses, outIndices};
            s = yd::fastNms<CudaExec, F16>(
                exec, p, static_cast<uint16_t const*>(boxes), static_cast<uint16_t const*>(scores), ws, out);
        }
        else
        {
            s = kBAD_ARGUMENT;
        }
        if (s == kSUCCESS && cudaPeekAtLastError() != cudaSuccess)
        {
            s = kBACKEND_ERROR;
        }
        return s;
    }
    catch (...)
    {
        return kBACKEND_ERROR;
    }
}

} // namespace gpu
} // namespace yd
