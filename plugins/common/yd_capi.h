/* C API of the plugins, shared part. Each plugin declares its own functions in
 * plugins/<plugin>/<plugin>_capi.h: yd_<plugin>_cpu in libyolact_plugins_cpu.so (host memory,
 * synchronous) and yd_<plugin>_cuda in libyolact_plugins_cuda.so (device memory, asynchronous on the
 * given cudaStream_t, never synchronising or allocating). Both run the same core code.
 * Tensors are dense, row-major (C order). dtype: 0 = float32, 1 = float16 (IEEE binary16 bits). Functions return 0 on success, otherwise a yd::Status code, and
 * yd_last_error() then describes the problem (thread-local, valid until the next call).
 * Python binds the CPU library with ctypes (yolact_deploy/deploy/plugin_library.py), scripts/device_check.py the CUDA one.
 */
#ifndef YOLACT_DEPLOY_YD_CAPI_H
#define YOLACT_DEPLOY_YD_CAPI_H

#include <stdint.h>

#if defined(__GNUC__)
#define YD_API __attribute__((visibility("default")))
#else
#define YD_API
#endif

#define YD_CAPI_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

YD_API int32_t yd_capi_version(void);
YD_API char const* yd_last_error(void);

/* binary16 <-> binary32 conversions of the kernels' CPU path, for tests. */
YD_API void yd_half_to_float(uint16_t const* in, float* out, int64_t n);
YD_API void yd_float_to_half(float const* in, uint16_t* out, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
