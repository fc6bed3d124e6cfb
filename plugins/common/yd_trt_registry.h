// Self-registration of the plugins' creators (the role REGISTER_TENSORRT_PLUGIN plays in TensorRT's
// own plugins): each plugin's wrapper source says YD_TRT_REGISTER_CREATOR(ItsCreator); which of the
// two registry files is linked decides what happens next:
//   yd_trt_registry_dynamic.cpp (libyolact_plugins.so): the creators are listed by getCreators, for
//     IPluginRegistry::loadLibrary / trtexec --dynamicPlugins / --setPluginsToSerialize;
//   yd_trt_registry_static.cpp (libyolact_plugins_static.so): each creator is registered with
//     TensorRT's registry while the library is being loaded (Polygraphy --plugins, trtexec
//     --staticPlugins, a plain dlopen/ctypes.CDLL).
#pragma once

#include <NvInferRuntime.h>

namespace yd
{
namespace trt
{

void addCreator(nvinfer1::IPluginCreatorInterface* creator) noexcept;

} // namespace trt
} // namespace yd

#define YD_TRT_REGISTER_CREATOR(Creator)                                                                               \
    namespace                                                                                                          \
    {                                                                                                                  \
    struct Creator##Registrar                                                                                          \
    {                                                                                                                  \
        Creator##Registrar()                                                                                           \
        {                                                                                                              \
            static Creator creator;                                                                                    \
            ::yd::trt::addCreator(&creator);                                                                           \
        }                                                                                                              \
    } const g##Creator##Registrar;                                                                                     \
    }
