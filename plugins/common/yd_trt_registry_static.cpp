// libyolact_plugins_static.so: each creator is registered with TensorRT's plugin registry while the
// library is loaded, for tools that only dlopen a plugin library (Polygraphy --plugins uses
// ctypes.CDLL; trtexec --staticPlugins dlopens after initLibNvInferPlugins). The library links no
// TensorRT library (one file per TensorRT major, like libyolact_plugins.so), so it finds
// getPluginRegistry in the libnvinfer already loaded in the process: first in the global scope, then
// by soname (Python's tensorrt module loads libnvinfer with RTLD_LOCAL). No getCreators here, so
// loadLibrary cannot be pointed at this file and register the creators a second time.
#include "yd_trt_common.h"
#include "yd_trt_registry.h"

#include <dlfcn.h>

#include <cstdio>

#ifndef YD_TRT_MAJOR
#error "YD_TRT_MAJOR (the TensorRT major of the headers) must be defined"
#endif
#define YD_STR2(x) #x
#define YD_STR(x) YD_STR2(x)

namespace yd
{
namespace trt
{
namespace
{
using GetRegistry = nvinfer1::IPluginRegistry* (*) ();

GetRegistry findRegistry() noexcept
{
    void* sym = dlsym(RTLD_DEFAULT, "getPluginRegistry");
    if (sym == nullptr)
    {
        void* lib = dlopen("libnvinfer.so." YD_STR(YD_TRT_MAJOR), RTLD_NOW | RTLD_NOLOAD);
        sym = lib != nullptr ? dlsym(lib, "getPluginRegistry") : nullptr;
    }
    return reinterpret_cast<GetRegistry>(sym);
}
} // namespace

void addCreator(nvinfer1::IPluginCreatorInterface* creator) noexcept
{
    GetRegistry const get = findRegistry();
    nvinfer1::IPluginRegistry* registry = get != nullptr ? get() : nullptr;
    if (registry == nullptr)
    {
        static bool said = false; // once, not once per creator
        if (said)
        {
            return;
        }
        said = true;
        std::fprintf(stderr,
            "libyolact_plugins_static.so: TensorRT (libnvinfer.so." YD_STR(YD_TRT_MAJOR) ") is not loaded in this "
            "process, nothing registered: load TensorRT first, or use libyolact_plugins.so with loadLibrary\n");
        return;
    }
    if (!registry->registerCreator(*creator, kPluginNamespace))
    {
        std::fprintf(stderr, "libyolact_plugins_static.so: TensorRT refused a creator (already registered?)\n");
    }
}

} // namespace trt
} // namespace yd
