// The library's TensorRT entry points: IPluginRegistry::loadLibrary, Python load_library and
// trtexec --dynamicPlugins look these two C symbols up (the version script exports nothing else).
// No REGISTER_TENSORRT_PLUGIN: static registration would make loadLibrary fail as "already registered".
#include "deform_im2col_plugin.h"
#include "fast_nms_plugin.h"
#include "yd_trt_common.h"

namespace yd
{
namespace trt
{
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;
} // namespace trt
} // namespace yd

extern "C" __attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    yd::trt::setLoggerFinder(finder);
}

extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators)
{
    static yd::trt::DeformIm2colCreator deformIm2col;
    static yd::trt::FastNmsCreator fastNms;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&deformIm2col, &fastNms};
    nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
    return creators;
}
