#include "fast_nms_plugin.h"
#include "yd_trt_registry.h"
#include "fast_nms_cuda.h"

#include <cstring>
#include <exception>

using namespace nvinfer1;

namespace yd
{
namespace trt
{
namespace
{
constexpr char const* kName = "YolactFastNMS";
constexpr int32_t kNbInputs = 2;
constexpr int32_t kNbOutputs = 5; // num_detections, boxes, scores, classes, indices

bool validAttrs(FastNmsAttrs const& a)
{
    return a.topK >= 1 && a.maxDetections >= 1 && a.confThresh == a.confThresh && a.iouThreshold == a.iouThreshold
        && (a.crossClass == 0 || a.crossClass == 1) && (a.secondThreshold == 0 || a.secondThreshold == 1);
}
} // namespace

FastNmsPlugin::FastNmsPlugin(FastNmsAttrs const& attrs)
    : mAttrs(attrs)
{
}

FastNmsPlugin::FastNmsPlugin(FastNmsPlugin const& other)
    : IPluginV3(other)
    , IPluginV3OneCore(other)
    , IPluginV3OneBuild(other)
    , IPluginV3OneRuntime(other)
    , mAttrs(other.mAttrs)
{
}

IPluginCapability* FastNmsPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
    case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
    case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

IPluginV3* FastNmsPlugin::clone() noexcept
{
    try
    {
        return new FastNmsPlugin(*this);
    }
    catch (...)
    {
        return nullptr;
    }
}

char const* FastNmsPlugin::getPluginName() const noexcept
{
    return kName;
}

char const* FastNmsPlugin::getPluginVersion() const noexcept
{
    return kPluginVersion;
}

char const* FastNmsPlugin::getPluginNamespace() const noexcept
{
    return kPluginNamespace;
}

int32_t FastNmsPlugin::getNbOutputs() const noexcept
{
    return kNbOutputs;
}

int32_t FastNmsPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (nbOutputs != kNbOutputs || nbInputs != kNbInputs)
    {
        return -1;
    }
    // NMS stays FP32 whatever the builder's precision (strongly typed graphs cast around it; with
    // 10.x's weak --fp16 mode supportsFormatCombination keeps TensorRT from choosing FP16 I/O).
    if (inputTypes[0] != DataType::kFLOAT || inputTypes[1] != DataType::kFLOAT)
    {
        logError(std::string(kName) + ": boxes and scores must be FP32 (NMS runs in FP32; cast FP16 tensors)");
        return -1;
    }
    outputTypes[0] = DataType::kINT32;
    outputTypes[1] = DataType::kFLOAT;
    outputTypes[2] = DataType::kFLOAT;
    outputTypes[3] = DataType::kINT32;
    outputTypes[4] = DataType::kINT32;
    return 0;
}

int32_t FastNmsPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
    int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs, IExprBuilder& exprBuilder) noexcept
{
    if (nbInputs != kNbInputs || nbOutputs != kNbOutputs || inputs[0].nbDims != 3 || inputs[1].nbDims != 3)
    {
        logError(std::string(kName) + ": expects boxes [B, N, 4] and scores [B, N, C]");
        return -1;
    }
    IDimensionExpr const* batch = inputs[0].d[0];
    IDimensionExpr const* k = exprBuilder.constant(mAttrs.maxDetections);
    outputs[0].nbDims = 2; // num_detections [B, 1]
    outputs[0].d[0] = batch;
    outputs[0].d[1] = exprBuilder.constant(1);
    outputs[1].nbDims = 3; // boxes [B, K, 4]
    outputs[1].d[0] = batch;
    outputs[1].d[1] = k;
    outputs[1].d[2] = exprBuilder.constant(4);
    for (int32_t i = 2; i < kNbOutputs; ++i) // scores, classes, indices [B, K]
    {
        outputs[i].nbDims = 2;
        outputs[i].d[0] = batch;
        outputs[i].d[1] = k;
    }
    return 0;
}

bool FastNmsPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (nbInputs != kNbInputs || nbOutputs != kNbOutputs || pos < 0 || pos >= kNbInputs + kNbOutputs)
    {
        return false;
    }
    PluginTensorDesc const& d = inOut[pos].desc;
    if (d.format != TensorFormat::kLINEAR)
    {
        return false;
    }
    switch (pos)
    {
    case 0: // boxes
    case 1: // scores
    case 3: // out boxes
    case 4: // out scores
        return d.type == DataType::kFLOAT; // FP32 only, see getOutputDataTypes
    default: // num_detections, classes, indices
        return d.type == DataType::kINT32;
    }
}

bool FastNmsPlugin::makeParams(Dims const& boxes, Dims const& scores, FastNmsParams& p) const noexcept
{
    if (boxes.nbDims != 3 || scores.nbDims != 3 || boxes.d[2] != 4 || boxes.d[0] != scores.d[0]
        || boxes.d[1] != scores.d[1])
    {
        logError(std::string(kName) + ": expects boxes [B, N, 4] and scores [B, N, C]");
        return false;
    }
    p = FastNmsParams{boxes.d[0], boxes.d[1], scores.d[2], mAttrs.confThresh, mAttrs.iouThreshold, mAttrs.topK,
        mAttrs.maxDetections, mAttrs.crossClass != 0 ? 1 : 0, mAttrs.secondThreshold != 0 ? 1 : 0};
    if (checkFastNmsParams(p) != kSUCCESS)
    {
        logError(std::string(kName) + ": unsupported shape (N, C >= 1 and B*C*N below 2^31)");
        return false;
    }
    return true;
}

int32_t FastNmsPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept
{
    FastNmsParams p{};
    if (nbInputs != kNbInputs || nbOutputs != kNbOutputs)
    {
        return -1;
    }
    return makeParams(in[0].max, in[1].max, p) ? 0 : -1;
}

size_t FastNmsPlugin::getWorkspaceSize(
    DynamicPluginTensorDesc const* inputs, int32_t nbInputs, DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    FastNmsParams p{};
    size_t bytes = 0;
    if (nbInputs != kNbInputs || !makeParams(inputs[0].max, inputs[1].max, p))
    {
        return 0;
    }
    if (gpu::fastNmsWorkspaceBytes(p, bytes) != kSUCCESS)
    {
        logError(std::string(kName) + ": CUB's temp-storage size query failed");
        return 0; // enqueue then fails with "workspace too small" instead of overrunning
    }
    // Sized for the profile's largest shapes. TensorRT calls this at build time ("and possibly during
    // execution", NvInferRuntime.h), so the answer is recorded and serialized for enqueue's check.
    FastNmsWorkspaceProfile const entry{p.batch, p.numPriors, p.numClasses, static_cast<int64_t>(bytes)};
    bool known = false;
    for (int32_t i = 0; i < mAttrs.nbProfiles; ++i)
    {
        FastNmsWorkspaceProfile& e = mAttrs.profiles[static_cast<size_t>(i)];
        if (e.batch == entry.batch && e.priors == entry.priors && e.classes == entry.classes)
        {
            e.bytes = entry.bytes;
            known = true;
        }
    }
    if (!known && mAttrs.nbProfiles < kMaxWorkspaceProfiles)
    {
        mAttrs.profiles[static_cast<size_t>(mAttrs.nbProfiles++)] = entry;
    }
    return bytes;
}

// The smallest recorded workspace among the profiles whose maximum covers p: never more than what
// TensorRT allocated for the profile in use (which covers p). 0 when none is recorded.
size_t FastNmsPlugin::workspaceCapacity(FastNmsParams const& p) const noexcept
{
    int64_t best = -1;
    for (int32_t i = 0; i < mAttrs.nbProfiles; ++i)
    {
        FastNmsWorkspaceProfile const& e = mAttrs.profiles[static_cast<size_t>(i)];
        if (p.batch <= e.batch && p.numPriors <= e.priors && p.numClasses <= e.classes && (best < 0 || e.bytes < best))
        {
            best = e.bytes;
        }
    }
    return best < 0 ? 0 : static_cast<size_t>(best);
}

int32_t FastNmsPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept
{
    FastNmsParams p{};
    if (nbInputs != kNbInputs || nbOutputs != kNbOutputs)
    {
        return -1;
    }
    return makeParams(in[0].dims, in[1].dims, p) ? 0 : -1;
}

int32_t FastNmsPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
    void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept
{
    FastNmsParams p{};
    if (!makeParams(inputDesc[0].dims, inputDesc[1].dims, p))
    {
        return -1;
    }
    if (inputDesc[0].type != DataType::kFLOAT || inputDesc[1].type != DataType::kFLOAT)
    {
        logError(std::string(kName) + ": boxes and scores must be FP32");
        return -1;
    }
    // The capacity is what getWorkspaceSize reported for the profile maximum (none recorded: the
    // shapes do not fit any profile we were told about, and the call fails as "too small").
    Status const s = gpu::fastNms(p, DType::kFLOAT32, inputs[0], inputs[1], workspace, workspaceCapacity(p),
        static_cast<int32_t*>(outputs[0]), outputs[1], outputs[2], static_cast<int32_t*>(outputs[3]),
        static_cast<int32_t*>(outputs[4]), stream);
    if (s != kSUCCESS)
    {
        logError(std::string(kName) + ": CUDA execution failed (status " + std::to_string(s) + ")");
        return -1;
    }
    return 0;
}

IPluginV3* FastNmsPlugin::attachToContext(IPluginResourceContext* /*context*/) noexcept
{
    return clone();
}

PluginFieldCollection const* FastNmsPlugin::getFieldsToSerialize() noexcept
{
    try
    {
        mFields.clear();
        mFields.emplace_back("conf_thresh", &mAttrs.confThresh, PluginFieldType::kFLOAT32, 1);
        mFields.emplace_back("iou_threshold", &mAttrs.iouThreshold, PluginFieldType::kFLOAT32, 1);
        mFields.emplace_back("top_k", &mAttrs.topK, PluginFieldType::kINT32, 1);
        mFields.emplace_back("max_detections", &mAttrs.maxDetections, PluginFieldType::kINT32, 1);
        mFields.emplace_back("cross_class", &mAttrs.crossClass, PluginFieldType::kINT32, 1);
        mFields.emplace_back("second_threshold", &mAttrs.secondThreshold, PluginFieldType::kINT32, 1);
        if (mAttrs.nbProfiles > 0)
        {
            mFields.emplace_back("workspace_profiles", mAttrs.profiles.data(), PluginFieldType::kINT64,
                mAttrs.nbProfiles * 4);
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

FastNmsCreator::FastNmsCreator()
{
    mFieldNames.emplace_back("conf_thresh", nullptr, PluginFieldType::kFLOAT32, 1);
    mFieldNames.emplace_back("iou_threshold", nullptr, PluginFieldType::kFLOAT32, 1);
    mFieldNames.emplace_back("top_k", nullptr, PluginFieldType::kINT32, 1);
    mFieldNames.emplace_back("max_detections", nullptr, PluginFieldType::kINT32, 1);
    mFieldNames.emplace_back("cross_class", nullptr, PluginFieldType::kINT32, 1);
    mFieldNames.emplace_back("second_threshold", nullptr, PluginFieldType::kINT32, 1);
    mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
    mFieldCollection.fields = mFieldNames.data();
}

IPluginV3* FastNmsCreator::createPlugin(
    char const* /*name*/, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept
{
    try
    {
        FastNmsAttrs a;
        for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
        {
            PluginField const& f = fc->fields[i];
            if (f.name == nullptr)
            {
                continue;
            }
            std::string const n(f.name);
            bool ok = true;
            if (n == "conf_thresh")
            {
                ok = readFloat(f, a.confThresh);
            }
            else if (n == "iou_threshold")
            {
                ok = readFloat(f, a.iouThreshold);
            }
            else if (n == "top_k")
            {
                ok = readInt(f, a.topK);
            }
            else if (n == "max_detections")
            {
                ok = readInt(f, a.maxDetections);
            }
            else if (n == "cross_class")
            {
                ok = readInt(f, a.crossClass);
            }
            else if (n == "second_threshold")
            {
                ok = readInt(f, a.secondThreshold);
            }
            else if (n == "workspace_profiles") // written by getFieldsToSerialize, not an ONNX attribute
            {
                ok = f.type == PluginFieldType::kINT64 && f.data != nullptr && f.length % 4 == 0
                    && f.length / 4 <= kMaxWorkspaceProfiles;
                if (ok)
                {
                    a.nbProfiles = f.length / 4;
                    std::memcpy(a.profiles.data(), f.data, static_cast<size_t>(f.length) * sizeof(int64_t));
                }
            }
            if (!ok)
            {
                logError(std::string(kName) + ": attribute " + n + " has the wrong type");
                return nullptr;
            }
        }
        if (!validAttrs(a))
        {
            logError(std::string(kName)
                + ": needs top_k >= 1, max_detections >= 1, finite thresholds, cross_class and second_threshold 0/1");
            return nullptr;
        }
        return new FastNmsPlugin(a);
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

PluginFieldCollection const* FastNmsCreator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

char const* FastNmsCreator::getPluginName() const noexcept
{
    return kName;
}

char const* FastNmsCreator::getPluginVersion() const noexcept
{
    return kPluginVersion;
}

char const* FastNmsCreator::getPluginNamespace() const noexcept
{
    return kPluginNamespace;
}

} // namespace trt
} // namespace yd

namespace yd
{
namespace trt
{
YD_TRT_REGISTER_CREATOR(FastNmsCreator)
} // namespace trt
} // namespace yd
