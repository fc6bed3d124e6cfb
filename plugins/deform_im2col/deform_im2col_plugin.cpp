#include "deform_im2col_plugin.h"
#include "yd_trt_registry.h"
#include "deform_im2col_cuda.h"

#include <cstring>
#include <exception>

using namespace nvinfer1;

namespace yd
{
namespace trt
{
namespace
{
constexpr char const* kName = "YolactDeformIm2col";
constexpr int32_t kNbInputs = 3;

// Attribute name -> member; the order is the creator's field list and the serialized order.
struct AttrSlot
{
    char const* name;
    int32_t DeformIm2colAttrs::*member;
};
constexpr AttrSlot kAttrs[] = {
    {"kernel_h", &DeformIm2colAttrs::kernelH},
    {"kernel_w", &DeformIm2colAttrs::kernelW},
    {"stride_h", &DeformIm2colAttrs::strideH},
    {"stride_w", &DeformIm2colAttrs::strideW},
    {"pad_h", &DeformIm2colAttrs::padH},
    {"pad_w", &DeformIm2colAttrs::padW},
    {"dilation_h", &DeformIm2colAttrs::dilationH},
    {"dilation_w", &DeformIm2colAttrs::dilationW},
};

bool validAttrs(DeformIm2colAttrs const& a)
{
    return a.kernelH >= 1 && a.kernelW >= 1 && a.strideH >= 1 && a.strideW >= 1 && a.padH >= 0 && a.padW >= 0
        && a.dilationH >= 1 && a.dilationW >= 1;
}
} // namespace

DeformIm2colPlugin::DeformIm2colPlugin(DeformIm2colAttrs const& attrs)
    : mAttrs(attrs)
{
}

DeformIm2colPlugin::DeformIm2colPlugin(DeformIm2colPlugin const& other)
    : IPluginV3(other)
    , IPluginV3OneCore(other)
    , IPluginV3OneBuild(other)
    , IPluginV3OneRuntime(other)
    , mAttrs(other.mAttrs)
{
    // mFields point into the object they were made for: rebuilt on demand, never copied.
}

IPluginCapability* DeformIm2colPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
    case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
    case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

IPluginV3* DeformIm2colPlugin::clone() noexcept
{
    try
    {
        return new DeformIm2colPlugin(*this);
    }
    catch (...)
    {
        return nullptr;
    }
}

char const* DeformIm2colPlugin::getPluginName() const noexcept
{
    return kName;
}

char const* DeformIm2colPlugin::getPluginVersion() const noexcept
{
    return kPluginVersion;
}

char const* DeformIm2colPlugin::getPluginNamespace() const noexcept
{
    return kPluginNamespace;
}

int32_t DeformIm2colPlugin::getNbOutputs() const noexcept
{
    return 1;
}

int32_t DeformIm2colPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (nbOutputs != 1 || nbInputs != kNbInputs)
    {
        return -1;
    }
    outputTypes[0] = inputTypes[0];
    return 0;
}

int32_t DeformIm2colPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
    int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs, IExprBuilder& exprBuilder) noexcept
{
    if (nbInputs != kNbInputs || nbOutputs != 1 || inputs[0].nbDims != 4 || inputs[1].nbDims != 4
        || inputs[2].nbDims != 4)
    {
        logError(std::string(kName) + ": expects x, offset and mask of rank 4");
        return -1;
    }
    // [B, C*kH*kW, Ho*Wo] with Ho, Wo taken from the offset tensor (as ops.dcn.deformable_im2col).
    IDimensionExpr const* taps = exprBuilder.constant(int64_t{mAttrs.kernelH} * mAttrs.kernelW);
    outputs[0].nbDims = 3;
    outputs[0].d[0] = inputs[0].d[0];
    outputs[0].d[1] = exprBuilder.operation(DimensionOperation::kPROD, *inputs[0].d[1], *taps);
    outputs[0].d[2] = exprBuilder.operation(DimensionOperation::kPROD, *inputs[1].d[2], *inputs[1].d[3]);
    return 0;
}

bool DeformIm2colPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (nbInputs != kNbInputs || nbOutputs != 1 || pos < 0 || pos > kNbInputs)
    {
        return false;
    }
    PluginTensorDesc const& d = inOut[pos].desc;
    if (d.format != TensorFormat::kLINEAR)
    {
        return false;
    }
    if (pos == 0)
    {
        return d.type == DataType::kFLOAT || d.type == DataType::kHALF;
    }
    return d.type == inOut[0].desc.type; // offset, mask and output follow x
}

bool DeformIm2colPlugin::makeParams(
    Dims const& x, Dims const& offset, Dims const& mask, DeformIm2colParams& p) const noexcept
{
    int64_t const taps = int64_t{mAttrs.kernelH} * mAttrs.kernelW;
    if (x.nbDims != 4 || offset.nbDims != 4 || mask.nbDims != 4 || taps < 1 || mask.d[1] % taps != 0)
    {
        logError(std::string(kName) + ": mask channels must be a multiple of kernel_h * kernel_w");
        return false;
    }
    int64_t const dg = mask.d[1] / taps;
    bool const fits = dg >= 1 && offset.d[1] == 2 * mask.d[1] && x.d[1] % dg == 0 && offset.d[0] == x.d[0]
        && mask.d[0] == x.d[0] && mask.d[2] == offset.d[2] && mask.d[3] == offset.d[3];
    if (!fits)
    {
        logError(std::string(kName)
            + ": expected offset [B, 2*dg*kH*kW, Ho, Wo], mask [B, dg*kH*kW, Ho, Wo] and C divisible by dg");
        return false;
    }
    p = DeformIm2colParams{x.d[0], x.d[1], x.d[2], x.d[3], offset.d[2], offset.d[3], mAttrs.kernelH, mAttrs.kernelW,
        mAttrs.strideH, mAttrs.strideW, mAttrs.padH, mAttrs.padW, mAttrs.dilationH, mAttrs.dilationW,
        static_cast<int32_t>(dg)};
    if (checkDeformIm2colParams(p) != kSUCCESS)
    {
        logError(std::string(kName) + ": unsupported shape (sizes must be positive and below 2^24)");
        return false;
    }
    return true;
}

int32_t DeformIm2colPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept
{
    if (nbInputs != kNbInputs || nbOutputs != 1)
    {
        return -1;
    }
    // Check the channel arithmetic on the profile's max shapes (channels are static in practice).
    DeformIm2colParams p{};
    for (int32_t i = 0; i < kNbInputs; ++i)
    {
        if (in[i].max.nbDims != 4)
        {
            return -1;
        }
    }
    return makeParams(in[0].max, in[1].max, in[2].max, p) ? 0 : -1;
}

int32_t DeformIm2colPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept
{
    DeformIm2colParams p{};
    if (nbInputs != kNbInputs || nbOutputs != 1)
    {
        return -1;
    }
    return makeParams(in[0].dims, in[1].dims, in[2].dims, p) ? 0 : -1;
}

int32_t DeformIm2colPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
    void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept
{
    DeformIm2colParams p{};
    if (!makeParams(inputDesc[0].dims, inputDesc[1].dims, inputDesc[2].dims, p))
    {
        return -1;
    }
    DType const dtype = inputDesc[0].type == DataType::kHALF ? DType::kFLOAT16 : DType::kFLOAT32;
    Status const s = gpu::deformIm2col(p, dtype, inputs[0], inputs[1], inputs[2], outputs[0], stream);
    if (s != kSUCCESS)
    {
        logError(std::string(kName) + ": CUDA launch failed (status " + std::to_string(s) + ")");
        return -1;
    }
    return 0;
}

IPluginV3* DeformIm2colPlugin::attachToContext(IPluginResourceContext* /*context*/) noexcept
{
    return clone(); // no per-context resources
}

PluginFieldCollection const* DeformIm2colPlugin::getFieldsToSerialize() noexcept
{
    try
    {
        mFields.clear();
        for (AttrSlot const& a : kAttrs)
        {
            mFields.emplace_back(a.name, &(mAttrs.*a.member), PluginFieldType::kINT32, 1);
        }
        mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
        mFieldCollection.fields = mFields.data();
        return &mFieldCollection;
    }
    catch (...)
    {
        return nullptr;
    }
}

DeformIm2colCreator::DeformIm2colCreator()
{
    for (AttrSlot const& a : kAttrs)
    {
        mFieldNames.emplace_back(a.name, nullptr, PluginFieldType::kINT32, 1);
    }
    mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
    mFieldCollection.fields = mFieldNames.data();
}

IPluginV3* DeformIm2colCreator::createPlugin(
    char const* /*name*/, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept
{
    try
    {
        DeformIm2colAttrs attrs;
        for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
        {
            PluginField const& f = fc->fields[i];
            for (AttrSlot const& a : kAttrs)
            {
                if (f.name != nullptr && std::strcmp(f.name, a.name) == 0 && !readInt(f, attrs.*a.member))
                {
                    logError(std::string(kName) + ": attribute " + a.name + " must be an integer");
                    return nullptr;
                }
            }
        }
        if (!validAttrs(attrs))
        {
            logError(std::string(kName)
                + ": needs kernel_h, kernel_w >= 1, stride >= 1, dilation >= 1 and pad >= 0 (per axis)");
            return nullptr;
        }
        return new DeformIm2colPlugin(attrs);
    }
    catch (std::exception const& e)
    {
        logError(std::string(kName) + ": " + e.what());
        return nullptr;
    }
    catch (...)
    {
        return nullptr;
    }
}

PluginFieldCollection const* DeformIm2colCreator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

char const* DeformIm2colCreator::getPluginName() const noexcept
{
    return kName;
}

char const* DeformIm2colCreator::getPluginVersion() const noexcept
{
    return kPluginVersion;
}

char const* DeformIm2colCreator::getPluginNamespace() const noexcept
{
    return kPluginNamespace;
}

} // namespace trt
} // namespace yd

namespace yd
{
namespace trt
{
YD_TRT_REGISTER_CREATOR(DeformIm2colCreator)
} // namespace trt
} // namespace yd
