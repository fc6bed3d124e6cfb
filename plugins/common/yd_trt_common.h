// Helpers shared by the IPluginV3 wrappers: logging through TensorRT's logger, attribute parsing.
// Compiles against the TensorRT 10.3+ and 11.x headers (NvInferRuntime.h), links no TensorRT library.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <string>
#include <vector>

namespace yd
{
namespace trt
{

constexpr char const* kPluginVersion = "1";
constexpr char const* kPluginNamespace = "";

// Logs through the logger TensorRT handed over in setLoggerFinder (silent before that).
void log(nvinfer1::ILogger::Severity severity, std::string const& message) noexcept;
inline void logError(std::string const& message) noexcept
{
    log(nvinfer1::ILogger::Severity::kERROR, message);
}

// Reads an integer / float field. The ONNX parser sends kINT32 / kFLOAT32; engines we serialize carry
// the same; other integer and float widths are accepted too. False if the type is not numeric.
bool readInt(nvinfer1::PluginField const& field, int32_t& value) noexcept;
bool readFloat(nvinfer1::PluginField const& field, float& value) noexcept;

// Tensor dims -> int64 extents (dims must be known, i.e. at enqueue/onShapeChange time).
inline int64_t dim(nvinfer1::Dims const& d, int32_t i)
{
    return d.d[i];
}

} // namespace trt
} // namespace yd
