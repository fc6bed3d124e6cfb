// libyolact_plugins.so: the TensorRT entry points IPluginRegistry::loadLibrary, Python load_library
// and trtexec --dynamicPlugins look up (the version script exports nothing else). Nothing is
// registered on load: loadLibrary "will fail and return nullptr if any of the plugins are already
// registered" (NvInferRuntimeCommon.h), so registration on load lives in a separate file,
// libyolact_plugins_static.so (yd_trt_registry_static.cpp).
#include "yd_trt_common.h"
#include "yd_trt_registry.h"

#include <vector>

namespace yd
{
namespace trt
{
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

namespace
{
std::vector<nvinfer1::IPluginCreatorInterface*>& creators()
{
    static std::vector<nvinfer1::IPluginCreatorInterface*> list;
    return list;
}
} // namespace

void addCreator(nvinfer1::IPluginCreatorInterface* creator) noexcept
{
    try
    {
        creators().push_back(creator);
    }
    catch (...)
    {
    }
}

} // namespace trt
} // namespace yd

extern "C" __attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    yd::trt::setLoggerFinder(finder);
}

// Filled by the plugins' static registrars before any caller can reach this (library load).
extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators)
{
    auto const& list = yd::trt::creators();
    nbCreators = static_cast<int32_t>(list.size());
    return list.data();
}
