// IPluginV3 wrapper of YolactFastNMS (contract: README.md in this folder).
#pragma once

#include "fast_nms_params.h"
#include "yd_trt_common.h"

#include <array>
#include <vector>

namespace yd
{
namespace trt
{

// Workspace TensorRT allocates for one optimization profile: getWorkspaceSize's answer for its maximum.
struct FastNmsWorkspaceProfile
{
    int64_t batch, priors, classes, bytes;
};
constexpr int32_t kMaxWorkspaceProfiles = 16;

struct FastNmsAttrs
{
    float confThresh{0.05f};
    float iouThreshold{0.5f};
    int32_t topK{200};
    int32_t maxDetections{100};
    int32_t crossClass{0};
    int32_t secondThreshold{0};
    // Recorded at build time, serialized (field "workspace_profiles", int64 x 4 each) so that enqueue
    // can check its shapes against the workspace TensorRT really allocated.
    std::array<FastNmsWorkspaceProfile, kMaxWorkspaceProfiles> profiles{};
    int32_t nbProfiles{0};
};

class FastNmsPlugin final : public nvinfer1::IPluginV3,
                            public nvinfer1::IPluginV3OneCore,
                            public nvinfer1::IPluginV3OneBuild,
                            public nvinfer1::IPluginV3OneRuntime
{
public:
    explicit FastNmsPlugin(FastNmsAttrs const& attrs);
    FastNmsPlugin(FastNmsPlugin const& other);
    FastNmsPlugin& operator=(FastNmsPlugin const&) = delete;
    ~FastNmsPlugin() override = default;

    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    bool makeParams(nvinfer1::Dims const& boxes, nvinfer1::Dims const& scores, FastNmsParams& p) const noexcept;

    size_t workspaceCapacity(FastNmsParams const& p) const noexcept;

    mutable FastNmsAttrs mAttrs; // getWorkspaceSize (const) records the profiles
    std::vector<nvinfer1::PluginField> mFields;
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

class FastNmsCreator final : public nvinfer1::IPluginCreatorV3One
{
public:
    FastNmsCreator();
    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

private:
    std::vector<nvinfer1::PluginField> mFieldNames;
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

} // namespace trt
} // namespace yd
