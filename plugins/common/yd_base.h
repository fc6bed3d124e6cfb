// Shared by every translation unit of the plugins: CPU (g++), CUDA (nvcc) and the TensorRT wrappers.
// Nothing here depends on TensorRT or on the CUDA runtime.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define YD_HD __host__ __device__
#else
#define YD_HD
#endif

namespace yd
{

// Status codes of the C API and of the backend entry points (0 = success).
enum Status : int32_t
{
    kSUCCESS = 0,
    kBAD_ARGUMENT = 1,   // shapes, attributes or dtype that the plugin does not accept
    kBACKEND_ERROR = 2,  // a CUDA/CUB call failed, or an exception escaped the backend
    kWORKSPACE_TOO_SMALL = 3,
};

// Element types of the tensors the plugins read and write. Numbering is the C API's.
enum class DType : int32_t
{
    kFLOAT32 = 0,
    kFLOAT16 = 1,
};

YD_HD inline float bitsToFloat(uint32_t u)
{
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
#endif
}

YD_HD inline uint32_t floatToBits(float f)
{
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
#endif
}

// IEEE binary16 -> binary32, exact for every input (the portable twin of __half2float).
YD_HD inline float halfBitsToFloat(uint16_t h)
{
    uint32_t const sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t const exponent = (h >> 10) & 0x1fu;
    uint32_t const mantissa = h & 0x3ffu;
    if (exponent == 0)
    {
        // Zero or subnormal: mantissa * 2^-24, exact in binary32.
        float const magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-08f;
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 31)
    {
        return bitsToFloat(sign | 0x7f800000u | (mantissa << 13));
    }
    return bitsToFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// IEEE binary32 -> binary16 with round-to-nearest-even (the portable twin of __float2half_rn).
YD_HD inline uint16_t floatToHalfBits(float f)
{
    uint32_t const x = floatToBits(f);
    uint32_t const sign = (x >> 16) & 0x8000u;
    uint32_t const ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
    {
        return static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); // quiet NaN
    }
    if (ax >= 0x477ff000u)
    {
        return static_cast<uint16_t>(sign | 0x7c00u); // >= 65520 rounds to infinity
    }
    if (ax < 0x38800000u)
    {
        // Below the smallest normal half (2^-14): a subnormal in units of 2^-24, or zero.
        if (ax < 0x33000000u)
        {
            return static_cast<uint16_t>(sign); // <= 2^-25 rounds to zero (the tie goes to even)
        }
        uint32_t const e = ax >> 23;
        uint32_t const m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t const shift = 126u - e; // 14..24
        uint32_t q = m >> shift;
        uint32_t const rem = m & ((1u << shift) - 1u);
        uint32_t const half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u)))
        {
            ++q;
        }
        return static_cast<uint16_t>(sign | q);
    }
    uint32_t r = ((ax >> 23) - 112u) << 10 | ((ax >> 13) & 0x3ffu);
    uint32_t const rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
    {
        ++r; // a carry into the exponent is the correct rounding
    }
    return static_cast<uint16_t>(sign | r);
}

// Storage traits: how a kernel loads and stores one element of a tensor. Compute is always FP32.
struct F32
{
    using type = float;
    static constexpr DType kDType = DType::kFLOAT32;
    YD_HD static float load(float v) { return v; }
    YD_HD static float store(float v) { return v; }
};

struct F16
{
    using type = uint16_t; // raw binary16 bits; the same bytes TensorRT and numpy use
    static constexpr DType kDType = DType::kFLOAT16;
    YD_HD static float load(uint16_t v)
    {
#if defined(__CUDA_ARCH__)
        return __half2float(__ushort_as_half(v));
#else
        return halfBitsToFloat(v);
#endif
    }
    YD_HD static uint16_t store(float v)
    {
#if defined(__CUDA_ARCH__)
        return __half_as_ushort(__float2half_rn(v));
#else
        return floatToHalfBits(v);
#endif
    }
};

template <class T>
YD_HD inline T ydMin(T a, T b)
{
    return b < a ? b : a;
}

template <class T>
YD_HD inline T ydMax(T a, T b)
{
    return a < b ? b : a;
}

} // namespace yd
