// YolactFastNMS parameters and scratch layout, shared by the cores, the C API and the TensorRT
// wrapper (no Thrust).
#pragma once

#include "yd_base.h"

#include <cstddef>

namespace yd
{

struct FastNmsParams
{
    int64_t batch;
    int64_t numPriors;
    int64_t numClasses;
    float confThresh;
    float iouThreshold;
    int32_t topK;
    int32_t maxDetections;
    int32_t crossClass;      // 0/1; int32 rather than bool so that the struct has no padding bytes
    int32_t secondThreshold; // (kernel arguments are then fully defined, see tests/plugins/host_path)
};
static_assert(sizeof(FastNmsParams) == 48, "FastNmsParams must have no padding");

inline int64_t nmsSegmentsPerImage(FastNmsParams const& p)
{
    return p.crossClass ? 1 : p.numClasses;
}

inline int64_t nmsListLength(FastNmsParams const& p)
{
    return p.topK < p.numPriors ? p.topK : p.numPriors;
}

inline Status checkFastNmsParams(FastNmsParams const& p)
{
    if (p.batch < 0 || p.numPriors < 1 || p.numClasses < 1 || p.topK < 1 || p.maxDetections < 1)
    {
        return kBAD_ARGUMENT;
    }
    if (!(p.confThresh == p.confThresh) || !(p.iouThreshold == p.iouThreshold))
    {
        return kBAD_ARGUMENT;
    }
    // Sort offsets and prior indices are int32.
    int64_t const maxItems = p.batch * nmsSegmentsPerImage(p) * p.numPriors;
    if (maxItems > 2147483647LL || p.batch * p.numPriors * p.numClasses > 2147483647LL)
    {
        return kBAD_ARGUMENT;
    }
    return kSUCCESS;
}

// Scratch buffers; every pointer is device memory on the GPU, host memory on the CPU.
enum NmsBuffer : int32_t
{
    kNMS_FLAG = 0,     // int32 [B*N] candidate flag
    kNMS_POS,          // int32 [B*N] exclusive scan of the flags
    kNMS_COUNT,        // int32 [B]   candidates per image
    kNMS_CAND,         // int32 [B*N] candidate prior indices, compacted per image, ascending
    kNMS_BEST,         // float [B*N] best score per prior (cross-class key)
    kNMS_BEST_CLASS,   // int32 [B*N] first arg-max class per prior
    kNMS_KEYS1_IN,     // float [B*S*N] segment keys; with KEYS1_OUT the sort's double buffer
    kNMS_KEYS1_OUT,    // float [B*S*N]
    kNMS_VALS1_IN,     // int32 [B*S*N] prior index (double buffer with VALS1_OUT)
    kNMS_VALS1_OUT,    // int32 [B*S*N]
    kNMS_SEG1_BEGIN,   // int32 [B*S]
    kNMS_SEG1_END,     // int32 [B*S]
    kNMS_KEYS2_IN,     // float [B*S*k] selection keys (score if kept, -inf otherwise); double buffer
    kNMS_KEYS2_OUT,    // float [B*S*k]
    kNMS_VALS2_IN,     // int32 [B*S*k] position in the class-major list
    kNMS_VALS2_OUT,    // int32 [B*S*k]
    kNMS_SEG2_BEGIN,   // int32 [B]
    kNMS_SEG2_END,     // int32 [B]
    kNMS_NUM_BUFFERS
};

// Bytes of each scratch buffer (the backend's sort/scan temp storage comes on top).
inline void fastNmsBufferBytes(FastNmsParams const& p, size_t bytes[kNMS_NUM_BUFFERS])
{
    size_t const bn = static_cast<size_t>(p.batch * p.numPriors);
    size_t const bsn = static_cast<size_t>(p.batch * nmsSegmentsPerImage(p) * p.numPriors);
    size_t const bs = static_cast<size_t>(p.batch * nmsSegmentsPerImage(p));
    size_t const bsk = static_cast<size_t>(p.batch * nmsSegmentsPerImage(p) * nmsListLength(p));
    size_t const b = static_cast<size_t>(p.batch);
    size_t const counts[kNMS_NUM_BUFFERS]
        = {bn, bn, b, bn, bn, bn, bsn, bsn, bsn, bsn, bs, bs, bsk, bsk, bsk, bsk, b, b};
    for (int32_t i = 0; i < kNMS_NUM_BUFFERS; ++i)
    {
        bytes[i] = counts[i] * 4; // every element is a 4-byte float or int32
    }
}

constexpr size_t kWorkspaceAlignment = 256;

inline size_t alignUp(size_t v)
{
    return (v + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
}

struct FastNmsWorkspace
{
    void* buffer[kNMS_NUM_BUFFERS];
    void* temp;
    size_t tempBytes;
};

// Lays the scratch buffers and tempBytes of backend temp storage out in one block starting at base
// (nullptr: only measure). Returns the block's size in bytes.
inline size_t fastNmsCarve(FastNmsParams const& p, size_t tempBytes, void* base, FastNmsWorkspace* ws)
{
    size_t bytes[kNMS_NUM_BUFFERS];
    fastNmsBufferBytes(p, bytes);
    size_t offset = 0;
    for (int32_t i = 0; i < kNMS_NUM_BUFFERS; ++i)
    {
        if (ws != nullptr)
        {
            ws->buffer[i] = base != nullptr ? static_cast<char*>(base) + offset : nullptr;
        }
        offset += alignUp(bytes[i]);
    }
    if (ws != nullptr)
    {
        ws->temp = base != nullptr ? static_cast<char*>(base) + offset : nullptr;
        ws->tempBytes = tempBytes;
    }
    return offset + alignUp(tempBytes);
}

} // namespace yd
