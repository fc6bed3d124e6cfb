// libFuzzer: arbitrary bytes as an engine sidecar. Anything but a yolact::Error is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "yolact/engine_info.hpp"
#include "yolact/sidecar_schema.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const yolact::EngineInfo info = yolact::parse_engine_info(text, "fuzz");
        yolact::RuntimeEnvironment env;
        env.tensorrt = info.tensorrt;
        env.compute_capability = info.compute_capability;
        (void)yolact::check_compatibility(info, env);
    } catch (const yolact::Error&) {
    }
    return 0;
}
