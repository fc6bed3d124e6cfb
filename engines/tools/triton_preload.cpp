// libyolact_triton_preload.so: registers libyolact_plugins.so's creators with TensorRT in servers that
// only dlopen plugin libraries (Triton's TensorRT backend: LD_PRELOAD or
// --backend-config=tensorrt,plugins=...). libyolact_plugins.so exports getCreators/setLoggerFinder
// for IPluginRegistry::loadLibrary and registers nothing at dlopen time, so a plain dlopen is not
// enough; this shim's constructor calls loadLibrary on it.
//
//   YOLACT_PLUGINS_LIB       path of libyolact_plugins.so (default: next to this shim)
//   YOLACT_PRELOAD_VERBOSE=1 also report success (failures are always reported on stderr)
// Prefer --backend-config=tensorrt,plugins=<this shim>: with LD_PRELOAD every process the server
// starts loads libnvinfer (as any LD_PRELOADed TensorRT plugin library would).
//
// It links no TensorRT library: libnvinfer.so.<major of the headers it was built with> is opened
// at load time, the one the server itself uses (same soname, so the same plugin registry).
#include <NvInferRuntime.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

std::string own_directory() {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&own_directory), &info) && info.dli_fname) {
        const std::string path = info.dli_fname;
        const size_t slash = path.find_last_of('/');
        if (slash != std::string::npos) return path.substr(0, slash);
    }
    return ".";
}

__attribute__((constructor)) void yolact_register_plugins() {
    const char* env = std::getenv("YOLACT_PLUGINS_LIB");
    const std::string lib = (env && *env) ? env : own_directory() + "/libyolact_plugins.so";
    const std::string nvinfer = "libnvinfer.so." + std::to_string(NV_TENSORRT_MAJOR);
    void* handle = dlopen(nvinfer.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
        std::fprintf(stderr, "yolact preload: cannot load %s (%s); plugins not registered\n", nvinfer.c_str(), dlerror());
        return;
    }
    using GetRegistry = nvinfer1::IPluginRegistry* (*)();
    const auto get_registry = reinterpret_cast<GetRegistry>(dlsym(handle, "getPluginRegistry"));
    nvinfer1::IPluginRegistry* registry = get_registry ? get_registry() : nullptr;
    if (!registry) {
        std::fprintf(stderr, "yolact preload: %s has no plugin registry; plugins not registered\n", nvinfer.c_str());
        return;
    }
    if (!registry->loadLibrary(lib.c_str())) {
        std::fprintf(stderr, "yolact preload: TensorRT could not load %s (missing, built for another TensorRT, or "
                     "already loaded)\n", lib.c_str());
        return;
    }
    const char* verbose = std::getenv("YOLACT_PRELOAD_VERBOSE");
    if (verbose && *verbose && *verbose != '0') {
        std::fprintf(stderr, "yolact preload: registered the plugins of %s with %s\n", lib.c_str(), nvinfer.c_str());
    }
}

}  // namespace
