// The plugins' CUDA host path, run on the CPU against the recording runtime (ydrec.h).
//
// For every target GPU, each plugin's CUDA entry point (the C API the TensorRT wrappers' enqueue
// calls into) runs at small shapes and at each shipped profile's largest, with the workspace that
// getWorkspaceSize reports for the profile maximum. Asserted per call: no stream/device/event
// synchronisation, no allocation, no copy to the host, every launch with a non-empty grid within the
// device's limits and the kernel's launch bounds, every device pointer a kernel receives inside a
// buffer of the call (inputs, outputs, the workspace). Also the error paths of the entry points.
// Usage: yd_host_path_test --ptx kernels.ptx --archs "75;80;86;87;89;90" --ptx-arch 90 [--gpu NAME]...
#include "deform_im2col_capi.h"
#include "fast_nms_capi.h"
#include "ydrec.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace
{
int gFailed = 0;
int gPassed = 0;

void check(bool ok, std::string const& what)
{
    if (ok)
    {
        ++gPassed;
    }
    else
    {
        ++gFailed;
        std::printf("FAILED: %s\n", what.c_str());
    }
}

// Shipped profiles (yolact_deploy/export/tensorrt_build.py: --batch up to 8 in the desktop preset).
// Fast NMS: YOLACT++ 550 has 9 anchors x 6416 positions = 57,744 priors, YOLACT 550 19,248; COCO 80
// classes; top_k 200, max_detections 100 (config.py).
constexpr int64_t kMaxBatch = 8;
struct NmsShape
{
    char const* name;
    int64_t batch, priors, classes;
};
std::vector<NmsShape> const kNmsProfiles = {{"yolact_plus 550", kMaxBatch, 57744, 80}, {"yolact 550", kMaxBatch, 19248, 80}};

// DCN layers of YOLACT++ (ResNet-50/101, 550): 3x3, deformable groups 1, stride 1 or 2.
struct DcnShape
{
    char const* name;
    int64_t channels, h, w;
    int32_t stride;
};
std::vector<DcnShape> const kDcnProfiles = {{"stage2 in", 128, 138, 138, 2}, {"stage2", 128, 69, 69, 1},
    {"stage3 in", 256, 69, 69, 2}, {"stage3", 256, 35, 35, 1}, {"stage4 in", 512, 35, 35, 2}, {"stage4", 512, 18, 18, 1}};

std::string summary()
{
    return std::to_string(ydrec::count(ydrec::kLaunch)) + " launches, " + std::to_string(ydrec::count(ydrec::kSync))
        + " syncs, " + std::to_string(ydrec::count(ydrec::kAlloc)) + " allocs, "
        + std::to_string(ydrec::count(ydrec::kCopyToHost)) + " copies to host";
}

// Every recorded violation fails the case; prints them.
bool clean(std::string const& what, bool requireChecked)
{
    bool ok = true;
    for (ydrec::Event const& e : ydrec::log())
    {
        bool const bad = e.kind == ydrec::kSync || e.kind == ydrec::kAlloc || e.kind == ydrec::kCopyToHost
            || e.kind == ydrec::kBadLaunch || e.kind == ydrec::kBadPointer || e.kind == ydrec::kQuery
            || (requireChecked && e.kind == ydrec::kUnchecked);
        if (bad)
        {
            static char const* const names[] = {"launch", "SYNC", "ALLOC", "COPY TO HOST", "copy", "memset",
                "BAD LAUNCH", "BAD POINTER", "UNCHECKED LAUNCH", "UNANSWERED QUERY"};
            std::printf("  %s: %s: %s\n", what.c_str(), names[e.kind], e.what.c_str());
            ok = false;
        }
    }
    return ok;
}

void runNms(std::string const& gpu, NmsShape const& profile, int64_t batch, int64_t priors, bool crossClass, int dtype,
    bool requireChecked)
{
    std::string const what = gpu + " YolactFastNMS " + profile.name + (crossClass ? " cross-class" : " class-wise")
        + (dtype ? " FP16" : " FP32") + " B=" + std::to_string(batch) + " N=" + std::to_string(priors);
    int32_t const topK = 200, maxDet = 100;
    int64_t const ws = yd_fast_nms_cuda_workspace_bytes(profile.batch, profile.priors, profile.classes, topK, crossClass);
    if (ws < 0)
    {
        check(false, what + ": workspace query failed: " + yd_last_error());
        return;
    }
    size_t const elem = dtype ? 2 : 4;
    ydrec::deviceFreeAll();
    void* boxes = ydrec::deviceAlloc(batch * priors * 4 * elem, "boxes");
    void* scores = ydrec::deviceAlloc(batch * priors * profile.classes * elem, "scores");
    void* workspace = ydrec::deviceAlloc(static_cast<size_t>(ws), "workspace");
    auto* numDet = static_cast<int32_t*>(ydrec::deviceAlloc(batch * 4, "num_detections"));
    void* outBoxes = ydrec::deviceAlloc(batch * maxDet * 4 * elem, "out_boxes");
    void* outScores = ydrec::deviceAlloc(batch * maxDet * elem, "out_scores");
    auto* classes = static_cast<int32_t*>(ydrec::deviceAlloc(batch * maxDet * 4, "classes"));
    auto* indices = static_cast<int32_t*>(ydrec::deviceAlloc(batch * maxDet * 4, "indices"));
    void* stream = reinterpret_cast<void*>(0x5eed);
    ydrec::resetLog();
    int32_t const s = yd_fast_nms_cuda(dtype, boxes, scores, batch, priors, profile.classes, 0.05f, 0.5f, topK, maxDet,
        crossClass, 0, workspace, ws, numDet, outBoxes, outScores, classes, indices, stream);
    bool const ok = clean(what, requireChecked);
    std::printf("%-4s %s: status %d, %s, workspace %.1f MiB\n", ok && s == 0 ? "ok" : "FAIL", what.c_str(), s,
        summary().c_str(), static_cast<double>(ws) / (1 << 20));
    check(s == 0 && ok, what);
}

void runDcn(std::string const& gpu, DcnShape const& d, int64_t batch, int dtype, bool requireChecked)
{
    std::string const what = gpu + " YolactDeformIm2col " + d.name + (dtype ? " FP16" : " FP32") + " B="
        + std::to_string(batch) + " C=" + std::to_string(d.channels) + " " + std::to_string(d.h) + "x"
        + std::to_string(d.w);
    int64_t const ho = (d.h + 2 - 3) / d.stride + 1, wo = (d.w + 2 - 3) / d.stride + 1;
    size_t const elem = dtype ? 2 : 4;
    ydrec::deviceFreeAll();
    void* x = ydrec::deviceAlloc(batch * d.channels * d.h * d.w * elem, "x");
    void* off = ydrec::deviceAlloc(batch * 18 * ho * wo * elem, "offset");
    void* mask = ydrec::deviceAlloc(batch * 9 * ho * wo * elem, "mask");
    void* cols = ydrec::deviceAlloc(batch * d.channels * 9 * ho * wo * elem, "cols");
    ydrec::resetLog();
    int32_t const s = yd_deform_im2col_cuda(dtype, x, off, mask, cols, batch, d.channels, d.h, d.w, ho, wo, 3, 3,
        d.stride, d.stride, 1, 1, 1, 1, 1, reinterpret_cast<void*>(0x5eed));
    bool const ok = clean(what, requireChecked);
    std::printf("%-4s %s: status %d, %s\n", ok && s == 0 ? "ok" : "FAIL", what.c_str(), s, summary().c_str());
    check(s == 0 && ok, what);
}

void errorPaths(bool havePtx)
{
    ydrec::selectGpu("H100");
    NmsShape const p{"small", 2, 500, 3};
    int64_t const ws = yd_fast_nms_cuda_workspace_bytes(p.batch, p.priors, p.classes, 200, 0);
    ydrec::deviceFreeAll();
    void* boxes = ydrec::deviceAlloc(p.batch * p.priors * 16, "boxes");
    void* scores = ydrec::deviceAlloc(p.batch * p.priors * p.classes * 4, "scores");
    void* workspace = ydrec::deviceAlloc(static_cast<size_t>(ws), "workspace");
    auto* out = static_cast<int32_t*>(ydrec::deviceAlloc(p.batch * 100 * 16, "outputs"));
    auto call = [&](int64_t capacity) {
        return yd_fast_nms_cuda(0, boxes, scores, p.batch, p.priors, p.classes, 0.05f, 0.5f, 200, 100, 0, 0, workspace,
            capacity, out, out, out, out, out, nullptr);
    };
    // A workspace smaller than these shapes need is refused before any launch (the plugin passes the
    // size TensorRT allocated, so a wrong getWorkspaceSize cannot turn into an overrun).
    ydrec::resetLog();
    check(call(ws - 1) == 3 && ydrec::count(ydrec::kLaunch) == 0, "a workspace one byte short is refused unlaunched");
    // An error some other code left pending does not fail our call, and our call leaves none behind.
    ydrec::setPendingError(1); // cudaErrorInvalidValue
    check(call(ws) == 0 && ydrec::pendingError() == 0, "a stale error is not reported as ours");
    // A failed launch is reported and taken (not left for the next caller).
    ydrec::failNextLaunch(700);
    check(call(ws) == 2 && ydrec::pendingError() == 0, "a failed launch is reported and cleared");
    ydrec::failNextLaunch(700);
    check(yd_deform_im2col_cuda(0, boxes, boxes, boxes, out, 1, 1, 4, 4, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, nullptr) == 2
            && ydrec::pendingError() == 0,
        "a failed im2col launch is reported and cleared");
    // A failed size query is an error, never a silent zero-byte temp storage.
    ydrec::failAttributeQueries(true);
    int64_t const failed = yd_fast_nms_cuda_workspace_bytes(8, 57744, 80, 200, 0);
    ydrec::failAttributeQueries(false);
    check(failed == -1 && std::strlen(yd_last_error()) > 0, "a failed CUB size query gives -1 with a message");
    check(ydrec::pendingError() == 0, "the failed query leaves no pending error");
    // The checker itself: a workspace buffer half the claimed size puts kernel pointers past its end.
    ydrec::deviceFreeAll();
    boxes = ydrec::deviceAlloc(p.batch * p.priors * 16, "boxes");
    scores = ydrec::deviceAlloc(p.batch * p.priors * p.classes * 4, "scores");
    workspace = ydrec::deviceAlloc(static_cast<size_t>(ws / 2), "workspace");
    out = static_cast<int32_t*>(ydrec::deviceAlloc(p.batch * 100 * 16, "outputs"));
    ydrec::resetLog();
    call(ws);
    check(!havePtx || ydrec::count(ydrec::kBadPointer) > 0, "the pointer check sees scratch memory outside the workspace");
    std::printf("ok   error paths\n");
}

} // namespace

int main(int argc, char** argv)
{
    std::string ptx, archs = "75;80;86;87;89;90";
    int ptxArch = 90;
    std::vector<std::string> gpus;
    bool quick = false;
    for (int i = 1; i < argc; ++i)
    {
        std::string const a = argv[i];
        if (a == "--ptx" && i + 1 < argc)
        {
            ptx = argv[++i];
        }
        else if (a == "--archs" && i + 1 < argc)
        {
            archs = argv[++i];
        }
        else if (a == "--ptx-arch" && i + 1 < argc)
        {
            ptxArch = std::stoi(argv[++i]);
        }
        else if (a == "--gpu" && i + 1 < argc)
        {
            gpus.push_back(argv[++i]);
        }
        else if (a == "--quick")
        {
            quick = true; // one GPU per family, FP32 only
        }
        else
        {
            std::fprintf(stderr, "error: unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    ydrec::setCompiledArchs(archs, ptxArch);
    bool const requireChecked = !ptx.empty();
    if (!ptx.empty())
    {
        int const n = ydrec::loadPtx(ptx);
        std::printf("kernel parameter layouts: %d kernels from %s\n", n, ptx.c_str());
        check(n > 0, "the PTX file lists kernels");
    }
    else
    {
        std::printf("no --ptx: kernel pointer arguments are not checked\n");
    }
    if (gpus.empty())
    {
        for (ydrec::Gpu const& g : ydrec::gpus())
        {
            gpus.push_back(g.name);
        }
    }
    for (std::string const& gpu : gpus)
    {
        if (!ydrec::selectGpu(gpu))
        {
            std::fprintf(stderr, "error: unknown GPU %s\n", gpu.c_str());
            return 2;
        }
        for (NmsShape const& p : kNmsProfiles)
        {
            for (int cross = 0; cross < 2; ++cross)
            {
                for (int dtype = 0; dtype < (quick ? 1 : 2); ++dtype)
                {
                    runNms(gpu, p, 1, 50, cross, dtype, requireChecked);     // small
                    runNms(gpu, p, 7, p.priors, cross, dtype, requireChecked); // 560 segments class-wise
                    runNms(gpu, p, p.batch, p.priors, cross, dtype, requireChecked); // profile maximum
                }
            }
        }
        for (DcnShape const& d : kDcnProfiles)
        {
            for (int dtype = 0; dtype < (quick ? 1 : 2); ++dtype)
            {
                runDcn(gpu, d, 1, dtype, requireChecked);
                runDcn(gpu, d, kMaxBatch, dtype, requireChecked);
            }
        }
    }
    errorPaths(requireChecked);
    ydrec::deviceFreeAll();
    std::printf("%d passed, %d failed\n", gPassed, gFailed);
    return gFailed == 0 ? 0 : 1;
}
