// Each plugin's IPluginV3 path as TensorRT drives it, on the CPU: creator -> build-phase plugin ->
// configurePlugin / getWorkspaceSize at the profile maximum -> getFieldsToSerialize -> runtime plugin
// from the serialized fields -> attachToContext -> onShapeChange -> enqueue, with the recording cudart
// (ydrec.h) answering as an H100 and the workspace exactly the size getWorkspaceSize reported.
// Built only when TensorRT headers are found (not in CI); see host_path_test.cpp for the CI check.
#include "ydrec.h"

#include <NvInferRuntime.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace nvinfer1;

extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);

namespace
{
int gFailed = 0;
int gPassed = 0;

void check(bool ok, std::string const& what)
{
    ++(ok ? gPassed : gFailed);
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
}

Dims dims(std::vector<int64_t> const& v)
{
    Dims d{};
    d.nbDims = static_cast<int32_t>(v.size());
    for (size_t i = 0; i < v.size(); ++i)
    {
        d.d[i] = v[i];
    }
    return d;
}

DynamicPluginTensorDesc dyn(std::vector<int64_t> const& max, DataType type)
{
    DynamicPluginTensorDesc d{};
    d.desc.dims = dims(max);
    d.desc.type = type;
    d.desc.format = TensorFormat::kLINEAR;
    d.min = d.opt = d.max = d.desc.dims;
    d.min.d[0] = 1;
    return d;
}

PluginTensorDesc at(DynamicPluginTensorDesc const& d, int64_t batch)
{
    PluginTensorDesc p = d.desc;
    p.dims.d[0] = batch;
    return p;
}

IPluginCreatorV3One* creator(char const* name)
{
    int32_t n = 0;
    IPluginCreatorInterface* const* list = getCreators(n);
    for (int32_t i = 0; i < n; ++i)
    {
        auto* c = static_cast<IPluginCreatorV3One*>(list[i]);
        if (std::strcmp(c->getPluginName(), name) == 0)
        {
            return c;
        }
    }
    return nullptr;
}

bool clean()
{
    return ydrec::count(ydrec::kSync) == 0 && ydrec::count(ydrec::kAlloc) == 0 && ydrec::count(ydrec::kCopyToHost) == 0
        && ydrec::count(ydrec::kBadLaunch) == 0 && ydrec::count(ydrec::kBadPointer) == 0 && ydrec::count(ydrec::kLaunch) > 0;
}

// Build phase at the profile maximum, then the runtime plugin TensorRT would deserialize.
std::unique_ptr<IPluginV3> runtimePlugin(IPluginCreatorV3One* c, PluginFieldCollection const& attrs,
    std::vector<DynamicPluginTensorDesc> const& in, std::vector<DynamicPluginTensorDesc> const& out, size_t& workspace)
{
    std::unique_ptr<IPluginV3> build(c->createPlugin("p", &attrs, TensorRTPhase::kBUILD));
    auto* b = static_cast<IPluginV3OneBuild*>(build->getCapabilityInterface(PluginCapabilityType::kBUILD));
    int32_t const ni = static_cast<int32_t>(in.size()), no = static_cast<int32_t>(out.size());
    check(b->configurePlugin(in.data(), ni, out.data(), no) == 0, std::string(c->getPluginName()) + " configures at the profile maximum");
    workspace = b->getWorkspaceSize(in.data(), ni, out.data(), no);
    auto* r = static_cast<IPluginV3OneRuntime*>(build->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    std::unique_ptr<IPluginV3> restored(c->createPlugin("p", r->getFieldsToSerialize(), TensorRTPhase::kRUNTIME));
    auto* rr = static_cast<IPluginV3OneRuntime*>(restored->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    return std::unique_ptr<IPluginV3>(rr->attachToContext(nullptr));
}

void fastNms()
{
    IPluginCreatorV3One* c = creator("YolactFastNMS");
    check(c != nullptr, "YolactFastNMS creator");
    PluginFieldCollection const none{0, nullptr};
    int64_t const B = 8, N = 57744, C = 80, K = 100;
    std::vector<DynamicPluginTensorDesc> in{dyn({B, N, 4}, DataType::kFLOAT), dyn({B, N, C}, DataType::kFLOAT)};
    std::vector<DynamicPluginTensorDesc> out{dyn({B, 1}, DataType::kINT32), dyn({B, K, 4}, DataType::kFLOAT),
        dyn({B, K}, DataType::kFLOAT), dyn({B, K}, DataType::kINT32), dyn({B, K}, DataType::kINT32)};
    size_t ws = 0;
    std::unique_ptr<IPluginV3> plugin = runtimePlugin(c, none, in, out, ws);
    check(ws > 0, "YolactFastNMS getWorkspaceSize at B 8: " + std::to_string(ws >> 20) + " MiB");
    auto* r = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    for (int64_t batch : {int64_t{1}, B, B + 1})
    {
        ydrec::deviceFreeAll();
        void* boxes = ydrec::deviceAlloc(batch * N * 16, "boxes");
        void* scores = ydrec::deviceAlloc(batch * N * C * 4, "scores");
        void* workspace = ydrec::deviceAlloc(ws, "workspace");
        void* outs[5];
        for (int i = 0; i < 5; ++i)
        {
            outs[i] = ydrec::deviceAlloc(batch * K * 16, "output");
        }
        void const* ins[2] = {boxes, scores};
        PluginTensorDesc inDesc[2] = {at(in[0], batch), at(in[1], batch)};
        PluginTensorDesc outDesc[5];
        for (int i = 0; i < 5; ++i)
        {
            outDesc[i] = at(out[static_cast<size_t>(i)], batch);
        }
        ydrec::resetLog();
        check(r->onShapeChange(inDesc, 2, outDesc, 5) == 0, "YolactFastNMS onShapeChange B " + std::to_string(batch));
        int32_t const s = r->enqueue(inDesc, outDesc, ins, outs, workspace, nullptr);
        if (batch <= B)
        {
            check(s == 0 && clean(), "YolactFastNMS enqueue B " + std::to_string(batch)
                    + " within the reported workspace: no sync, no allocation, no copy to the host");
        }
        else
        {
            check(s != 0 && ydrec::count(ydrec::kLaunch) == 0,
                "YolactFastNMS enqueue beyond the profile (B 9) refused before any launch");
        }
    }
}

void deformIm2col()
{
    IPluginCreatorV3One* c = creator("YolactDeformIm2col");
    check(c != nullptr, "YolactDeformIm2col creator");
    int32_t const three = 3, one = 1, two = 2;
    PluginField f[8] = {PluginField("kernel_h", &three, PluginFieldType::kINT32, 1),
        PluginField("kernel_w", &three, PluginFieldType::kINT32, 1), PluginField("stride_h", &two, PluginFieldType::kINT32, 1),
        PluginField("stride_w", &two, PluginFieldType::kINT32, 1), PluginField("pad_h", &one, PluginFieldType::kINT32, 1),
        PluginField("pad_w", &one, PluginFieldType::kINT32, 1), PluginField("dilation_h", &one, PluginFieldType::kINT32, 1),
        PluginField("dilation_w", &one, PluginFieldType::kINT32, 1)};
    PluginFieldCollection const attrs{8, f};
    int64_t const B = 8, Cc = 512, H = 35, Ho = 18;
    std::vector<DynamicPluginTensorDesc> in{dyn({B, Cc, H, H}, DataType::kHALF), dyn({B, 18, Ho, Ho}, DataType::kHALF),
        dyn({B, 9, Ho, Ho}, DataType::kHALF)};
    std::vector<DynamicPluginTensorDesc> out{dyn({B, Cc * 9, Ho * Ho}, DataType::kHALF)};
    size_t ws = 0;
    std::unique_ptr<IPluginV3> plugin = runtimePlugin(c, attrs, in, out, ws);
    auto* r = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    ydrec::deviceFreeAll();
    void const* ins[3] = {ydrec::deviceAlloc(B * Cc * H * H * 2, "x"), ydrec::deviceAlloc(B * 18 * Ho * Ho * 2, "offset"),
        ydrec::deviceAlloc(B * 9 * Ho * Ho * 2, "mask")};
    void* outs[1] = {ydrec::deviceAlloc(B * Cc * 9 * Ho * Ho * 2, "cols")};
    PluginTensorDesc inDesc[3] = {at(in[0], B), at(in[1], B), at(in[2], B)};
    PluginTensorDesc outDesc[1] = {at(out[0], B)};
    ydrec::resetLog();
    check(r->onShapeChange(inDesc, 3, outDesc, 1) == 0 && r->enqueue(inDesc, outDesc, ins, outs, nullptr, nullptr) == 0
            && clean(),
        "YolactDeformIm2col FP16 enqueue at B 8, 512x35x35 stride 2: no sync, no allocation, no copy to the host");
}

} // namespace

int main(int argc, char** argv)
{
    if (argc > 2 && std::strcmp(argv[1], "--ptx") == 0)
    {
        ydrec::loadPtx(argv[2]);
    }
    ydrec::selectGpu("H100");
    fastNms();
    deformIm2col();
    std::printf("TensorRT %d.%d headers: %d passed, %d failed\n", NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR, gPassed, gFailed);
    return gFailed == 0 ? 0 : 1;
}
