// Shared parts of the CPU C API: error reporting and the half conversions.
#include "yd_capi.h"
#include "yd_capi_internal.h"

#include <string>

namespace
{
thread_local std::string gLastError;
}

namespace yd
{

int32_t fail(int32_t status, char const* message)
{
    gLastError = message;
    return status;
}

int32_t succeed()
{
    gLastError.clear();
    return 0;
}

} // namespace yd

extern "C" int32_t yd_capi_version(void)
{
    return YD_CAPI_VERSION;
}

extern "C" char const* yd_last_error(void)
{
    return gLastError.c_str();
}

extern "C" void yd_half_to_float(uint16_t const* in, float* out, int64_t n)
{
    for (int64_t i = 0; i < n; ++i)
    {
        out[i] = yd::halfBitsToFloat(in[i]);
    }
}

extern "C" void yd_float_to_half(float const* in, uint16_t* out, int64_t n)
{
    for (int64_t i = 0; i < n; ++i)
    {
        out[i] = yd::floatToHalfBits(in[i]);
    }
}
