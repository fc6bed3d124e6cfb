// YolactDeformIm2col parameters, shared by the cores, the C API and the TensorRT wrapper (no Thrust).
#pragma once

#include "yd_base.h"

namespace yd
{

struct DeformIm2colParams
{
    int64_t batch;
    int64_t channels;
    int64_t height;
    int64_t width;
    int64_t outH; // taken from the offset tensor, as the reference does
    int64_t outW;
    int32_t kernelH;
    int32_t kernelW;
    int32_t strideH;
    int32_t strideW;
    int32_t padH;
    int32_t padW;
    int32_t dilationH;
    int32_t dilationW;
    int32_t deformGroups; // mask channels / (kH*kW)
};

// Channels one work item samples at a time: the sampling position (offset, mask, corner weights)
// is computed once per group and reused for up to this many channels.
constexpr int64_t kIm2colChannelsPerItem = 8;

inline Status checkDeformIm2colParams(DeformIm2colParams const& p)
{
    if (p.batch < 0 || p.channels < 1 || p.height < 1 || p.width < 1 || p.outH < 1 || p.outW < 1)
    {
        return kBAD_ARGUMENT;
    }
    if (p.kernelH < 1 || p.kernelW < 1 || p.strideH < 1 || p.strideW < 1 || p.padH < 0 || p.padW < 0
        || p.dilationH < 1 || p.dilationW < 1 || p.deformGroups < 1 || p.channels % p.deformGroups != 0)
    {
        return kBAD_ARGUMENT;
    }
    // Sample positions are formed in FP32 from integers; keep them exact (|v| < 2^24).
    int64_t const reachH = p.outH * p.strideH + p.padH + int64_t{p.kernelH} * p.dilationH;
    int64_t const reachW = p.outW * p.strideW + p.padW + int64_t{p.kernelW} * p.dilationW;
    if (reachH >= (int64_t{1} << 24) || reachW >= (int64_t{1} << 24) || p.height >= (int64_t{1} << 24)
        || p.width >= (int64_t{1} << 24))
    {
        return kBAD_ARGUMENT;
    }
    return kSUCCESS;
}

} // namespace yd
