// Host-side checks of libyolact_plugins.so (and of libyolact_plugins_static.so's exports) through TensorRT's own interfaces, without a GPU and without
// libnvinfer: dlopen + getCreators as IPluginRegistry::loadLibrary does, creator fields, plugin
// creation from ONNX-style (INT32/FLOAT32) and serialized fields, capabilities, output types, format
// support and shape validation. Built only when TensorRT headers are found (see CMakeLists.txt).
#include <NvInferRuntime.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace nvinfer1;

namespace
{
int gFailed = 0;
int gPassed = 0;

void check(bool ok, std::string const& what)
{
    ++(ok ? gPassed : gFailed);
    if (!ok)
    {
        std::printf("FAILED: %s\n", what.c_str());
    }
}

class RecordingLogger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kERROR)
        {
            errors.emplace_back(msg);
        }
    }
    std::vector<std::string> errors;
};

class Finder : public ILoggerFinder
{
public:
    explicit Finder(ILogger* logger)
        : mLogger(logger)
    {
    }
    ILogger* findLogger() override
    {
        return mLogger;
    }

private:
    ILogger* mLogger;
};

DynamicPluginTensorDesc desc(std::vector<int64_t> const& dims, DataType type)
{
    DynamicPluginTensorDesc d{};
    d.desc.dims.nbDims = static_cast<int32_t>(dims.size());
    for (size_t i = 0; i < dims.size(); ++i)
    {
        d.desc.dims.d[i] = dims[i];
    }
    d.desc.type = type;
    d.desc.format = TensorFormat::kLINEAR;
    d.min = d.max = d.opt = d.desc.dims;
    return d;
}

struct Plugin
{
    IPluginV3* p;
    ~Plugin()
    {
        delete p;
    }
};

IPluginCreatorV3One* findCreator(IPluginCreatorInterface* const* creators, int32_t n, char const* name)
{
    for (int32_t i = 0; i < n; ++i)
    {
        if (std::strcmp(creators[i]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0)
        {
            auto* c = static_cast<IPluginCreatorV3One*>(creators[i]);
            if (std::strcmp(c->getPluginName(), name) == 0)
            {
                return c;
            }
        }
    }
    return nullptr;
}

void testDeformIm2col(IPluginCreatorV3One* c, RecordingLogger& log)
{
    check(std::strcmp(c->getPluginVersion(), "1") == 0 && std::strcmp(c->getPluginNamespace(), "") == 0,
        "YolactDeformIm2col version 1, namespace \"\"");
    std::vector<std::string> names;
    PluginFieldCollection const* fn = c->getFieldNames();
    for (int32_t i = 0; i < fn->nbFields; ++i)
    {
        names.emplace_back(fn->fields[i].name);
    }
    check(names
            == std::vector<std::string>{"kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w",
                "dilation_h", "dilation_w"},
        "YolactDeformIm2col field names");

    int32_t const v[] = {3, 2, 2, 1, 1, 0, 1, 2};
    std::vector<PluginField> f;
    for (int32_t i = 0; i < 8; ++i)
    {
        f.emplace_back(names[static_cast<size_t>(i)].c_str(), &v[i], PluginFieldType::kINT32, 1);
    }
    PluginFieldCollection fc{8, f.data()};
    Plugin plugin{c->createPlugin("dcn", &fc, TensorRTPhase::kBUILD)};
    check(plugin.p != nullptr, "YolactDeformIm2col created from INT32 fields");
    if (plugin.p == nullptr)
    {
        return;
    }
    auto* build = static_cast<IPluginV3OneBuild*>(plugin.p->getCapabilityInterface(PluginCapabilityType::kBUILD));
    auto* runtime
        = static_cast<IPluginV3OneRuntime*>(plugin.p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    auto* core = static_cast<IPluginV3OneCore*>(plugin.p->getCapabilityInterface(PluginCapabilityType::kCORE));
    check(build && runtime && core && std::strcmp(core->getPluginName(), "YolactDeformIm2col") == 0,
        "YolactDeformIm2col capabilities");
    check(build->getNbOutputs() == 1, "YolactDeformIm2col has one output");
    DataType in[3] = {DataType::kHALF, DataType::kHALF, DataType::kHALF};
    DataType out[1];
    check(build->getOutputDataTypes(out, 1, in, 3) == 0 && out[0] == DataType::kHALF, "FP16 in -> FP16 out");

    // x [2, 8, 9, 7], dg = 2: offset [2, 24, 5, 5], mask [2, 12, 5, 5]; output [2, 48, 25]
    DynamicPluginTensorDesc io[4] = {desc({2, 8, 9, 7}, DataType::kFLOAT), desc({2, 24, 5, 5}, DataType::kFLOAT),
        desc({2, 12, 5, 5}, DataType::kFLOAT), desc({2, 48, 25}, DataType::kFLOAT)};
    check(build->supportsFormatCombination(0, io, 3, 1) && build->supportsFormatCombination(3, io, 3, 1),
        "FP32 linear supported");
    io[2].desc.type = DataType::kHALF;
    check(!build->supportsFormatCombination(2, io, 3, 1), "mixed dtypes rejected");
    io[2].desc.type = DataType::kFLOAT;
    io[0].desc.format = TensorFormat::kHWC8;
    check(!build->supportsFormatCombination(0, io, 3, 1), "non-linear format rejected");
    io[0].desc.format = TensorFormat::kLINEAR;
    io[0].desc.type = DataType::kINT32;
    check(!build->supportsFormatCombination(0, io, 3, 1), "INT32 input rejected");
    io[0].desc.type = DataType::kFLOAT;
    check(build->configurePlugin(io, 3, io + 3, 1) == 0, "consistent shapes configure");
    size_t const errorsBefore = log.errors.size();
    DynamicPluginTensorDesc bad[4] = {desc({2, 8, 9, 7}, DataType::kFLOAT), desc({2, 20, 5, 5}, DataType::kFLOAT),
        desc({2, 12, 5, 5}, DataType::kFLOAT), desc({2, 48, 25}, DataType::kFLOAT)};
    check(build->configurePlugin(bad, 3, bad + 3, 1) != 0 && log.errors.size() > errorsBefore,
        "offset channels != 2 * mask channels rejected with a logged error");

    PluginFieldCollection const* ser = runtime->getFieldsToSerialize();
    std::map<std::string, int32_t> fields;
    for (int32_t i = 0; ser && i < ser->nbFields; ++i)
    {
        fields[ser->fields[i].name] = *static_cast<int32_t const*>(ser->fields[i].data);
    }
    check(fields.size() == 8 && fields["kernel_h"] == 3 && fields["stride_h"] == 2 && fields["dilation_w"] == 2,
        "serialized fields carry the attributes");
    Plugin restored{c->createPlugin("dcn", ser, TensorRTPhase::kRUNTIME)};
    check(restored.p != nullptr, "YolactDeformIm2col recreated from its serialized fields");
    Plugin cloned{plugin.p->clone()};
    check(cloned.p != nullptr && cloned.p != plugin.p, "clone");

    int64_t const wide[] = {3}; // INT64 fields are accepted too
    PluginField f64("kernel_h", wide, PluginFieldType::kINT64, 1);
    PluginField kw("kernel_w", &v[1], PluginFieldType::kINT32, 1);
    PluginField two[] = {f64, kw};
    PluginFieldCollection fc64{2, two};
    Plugin fromInt64{c->createPlugin("dcn", &fc64, TensorRTPhase::kBUILD)};
    check(fromInt64.p != nullptr, "INT64 attribute accepted, missing ones default");
    PluginFieldCollection none{0, nullptr};
    Plugin noKernel{c->createPlugin("dcn", &none, TensorRTPhase::kBUILD)};
    check(noKernel.p == nullptr, "missing kernel size rejected");
}

void testFastNms(IPluginCreatorV3One* c, RecordingLogger& log)
{
    check(std::strcmp(c->getPluginVersion(), "1") == 0 && std::strcmp(c->getPluginNamespace(), "") == 0,
        "YolactFastNMS version 1, namespace \"\"");
    float const conf = 0.05f, iou = 0.5f;
    int32_t const topK = 200, maxDet = 100, cross = 0, second = 0;
    PluginField f[] = {PluginField("conf_thresh", &conf, PluginFieldType::kFLOAT32, 1),
        PluginField("iou_threshold", &iou, PluginFieldType::kFLOAT32, 1),
        PluginField("top_k", &topK, PluginFieldType::kINT32, 1),
        PluginField("max_detections", &maxDet, PluginFieldType::kINT32, 1),
        PluginField("cross_class", &cross, PluginFieldType::kINT32, 1),
        PluginField("second_threshold", &second, PluginFieldType::kINT32, 1)};
    PluginFieldCollection fc{6, f};
    check(c->getFieldNames()->nbFields == 6, "YolactFastNMS lists 6 fields");
    Plugin plugin{c->createPlugin("nms", &fc, TensorRTPhase::kBUILD)};
    check(plugin.p != nullptr, "YolactFastNMS created");
    if (plugin.p == nullptr)
    {
        return;
    }
    auto* build = static_cast<IPluginV3OneBuild*>(plugin.p->getCapabilityInterface(PluginCapabilityType::kBUILD));
    check(build->getNbOutputs() == 5, "YolactFastNMS has five outputs");
    DataType half[2] = {DataType::kHALF, DataType::kHALF};
    DataType out[5];
    size_t errorsBeforeHalf = log.errors.size();
    check(build->getOutputDataTypes(out, 5, half, 2) != 0 && log.errors.size() > errorsBeforeHalf,
        "FP16 boxes/scores refused with a logged error (NMS stays FP32)");
    DataType in[2] = {DataType::kFLOAT, DataType::kFLOAT};
    check(build->getOutputDataTypes(out, 5, in, 2) == 0 && out[0] == DataType::kINT32 && out[1] == DataType::kFLOAT
            && out[2] == DataType::kFLOAT && out[3] == DataType::kINT32 && out[4] == DataType::kINT32,
        "output types: int32, float, float, int32, int32");
    DynamicPluginTensorDesc io[7] = {desc({2, 57744, 4}, DataType::kFLOAT), desc({2, 57744, 80}, DataType::kFLOAT),
        desc({2, 1}, DataType::kINT32), desc({2, 100, 4}, DataType::kFLOAT), desc({2, 100}, DataType::kFLOAT),
        desc({2, 100}, DataType::kINT32), desc({2, 100}, DataType::kINT32)};
    bool all = true;
    for (int32_t pos = 0; pos < 7; ++pos)
    {
        all = all && build->supportsFormatCombination(pos, io, 2, 5);
    }
    check(all, "YolactFastNMS FP32 combination supported");
    io[1].desc.type = DataType::kHALF;
    check(!build->supportsFormatCombination(1, io, 2, 5), "FP16 scores refused");
    io[1].desc.type = DataType::kFLOAT;
    io[0].desc.type = DataType::kHALF;
    check(!build->supportsFormatCombination(0, io, 2, 5), "FP16 boxes refused (weak typing cannot pick FP16 I/O)");
    io[0].desc.type = DataType::kFLOAT;
    io[5].desc.type = DataType::kINT64;
    check(!build->supportsFormatCombination(5, io, 2, 5), "classes must be INT32");
    io[5].desc.type = DataType::kINT32;
    check(build->configurePlugin(io, 2, io + 2, 5) == 0, "YolactFastNMS configures at the official shapes");
    size_t const errorsBefore = log.errors.size();
    DynamicPluginTensorDesc bad[2] = {desc({2, 57744, 4}, DataType::kFLOAT), desc({2, 1000, 80}, DataType::kFLOAT)};
    check(build->configurePlugin(bad, 2, io + 2, 5) != 0 && log.errors.size() > errorsBefore,
        "mismatched prior counts rejected with a logged error");

    int32_t const zero = 0;
    PluginField badTopK("top_k", &zero, PluginFieldType::kINT32, 1);
    PluginFieldCollection badFc{1, &badTopK};
    Plugin rejected{c->createPlugin("nms", &badFc, TensorRTPhase::kBUILD)};
    check(rejected.p == nullptr, "top_k 0 rejected");
    auto* runtime
        = static_cast<IPluginV3OneRuntime*>(plugin.p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    Plugin restored{c->createPlugin("nms", runtime->getFieldsToSerialize(), TensorRTPhase::kRUNTIME)};
    check(restored.p != nullptr, "YolactFastNMS recreated from its serialized fields");
}
} // namespace

int main(int argc, char** argv)
{
    if (argc != 2 && argc != 3)
    {
        std::printf("usage: %s libyolact_plugins.so [libyolact_plugins_static.so]\n", argv[0]);
        return 2;
    }
    if (argc == 3)
    {
        // The registering-on-load file: loads without TensorRT in the process (it then registers
        // nothing and says so on stderr) and has no getCreators for loadLibrary to find.
        void* staticLib = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
        check(staticLib != nullptr, std::string("libyolact_plugins_static.so loads: ") + (staticLib ? "" : dlerror()));
        check(staticLib == nullptr || dlsym(staticLib, "getCreators") == nullptr,
            "libyolact_plugins_static.so exports no getCreators");
    }
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr)
    {
        std::printf("cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    using GetCreators = IPluginCreatorInterface* const* (*) (int32_t&);
    using SetLoggerFinder = void (*)(ILoggerFinder*);
    auto getCreators = reinterpret_cast<GetCreators>(dlsym(lib, "getCreators"));
    auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(lib, "setLoggerFinder"));
    check(getCreators != nullptr && setLoggerFinder != nullptr, "getCreators and setLoggerFinder exported");
    check(dlsym(lib, "yd_fast_nms_cpu") == nullptr, "nothing else exported");
    if (getCreators == nullptr || setLoggerFinder == nullptr)
    {
        return 1;
    }
    static RecordingLogger logger;
    static Finder finder(&logger);
    setLoggerFinder(&finder);
    int32_t n = 0;
    IPluginCreatorInterface* const* creators = getCreators(n);
    check(n == 2, "two creators");
    IPluginCreatorV3One* dcn = findCreator(creators, n, "YolactDeformIm2col");
    IPluginCreatorV3One* nms = findCreator(creators, n, "YolactFastNMS");
    check(dcn != nullptr && nms != nullptr, "both creators are IPluginCreatorV3One");
    if (dcn != nullptr)
    {
        testDeformIm2col(dcn, logger);
    }
    if (nms != nullptr)
    {
        testFastNms(nms, logger);
    }
    std::printf("TensorRT %d.%d headers: %d passed, %d failed\n", NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR, gPassed,
        gFailed);
    return gFailed == 0 ? 0 : 1;
}
