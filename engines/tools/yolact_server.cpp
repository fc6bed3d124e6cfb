// yolact_server: a small HTTP detection service on a TensorRT engine.
//
//   yolact_server --engine model.plan [--plugins libyolact_plugins.so] [--host 127.0.0.1] [--port 8080]
//                 [--max-batch N] [--batch-window-ms 2] [--max-queue 64] [--max-body-mb 20]
//
//   curl -s --data-binary @image.jpg -H 'Content-Type: image/jpeg' 'http://127.0.0.1:8080/v1/detect?score_threshold=0.3'
// SIGINT/SIGTERM: stop accepting, finish queued requests, exit 0.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>
#include <string>
#include <thread>

#include "http.hpp"
#include "service.hpp"
#include "yolact/tensorrt.hpp"

namespace {

const char* kUsage =
    "usage: yolact_server --engine FILE.plan [--sidecar FILE.json] [--plugins libyolact_plugins.so]\n"
    "                     [--host 127.0.0.1] [--port 8080] [--device 0] [--max-batch N]\n"
    "                     [--batch-window-ms 2] [--max-queue 64] [--max-body-mb 20]\n"
    "                     [--max-connections 64] [--score-threshold 0]\n";

[[noreturn]] void usage_error(const std::string& msg) {
    std::fprintf(stderr, "error: %s\n%s", msg.c_str(), kUsage);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    std::string engine_path, sidecar, plugins, host = "127.0.0.1";
    int port = 8080, device = 0;
    double max_body_mb = 20;
    yolact::ServiceOptions sopts;
    yolact::http::Limits limits;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error(k + " needs a value");
            return argv[++i];
        };
        auto number = [&]() {
            const std::string v = value();
            char* end = nullptr;
            const double d = std::strtod(v.c_str(), &end);
            if (v.empty() || *end || d < 0) usage_error(k + " needs a non-negative number, got '" + v + "'");
            return d;
        };
        if (k == "-h" || k == "--help") { std::fputs(kUsage, stdout); return 0; }
        else if (k == "--engine") engine_path = value();
        else if (k == "--sidecar") sidecar = value();
        else if (k == "--plugins") plugins = value();
        else if (k == "--host") host = value();
        else if (k == "--port") port = static_cast<int>(number());
        else if (k == "--device") device = static_cast<int>(number());
        else if (k == "--max-batch") sopts.max_batch = static_cast<int>(number());
        else if (k == "--batch-window-ms") sopts.batch_window_us = static_cast<int>(number() * 1000);
        else if (k == "--max-queue") sopts.max_queue = static_cast<size_t>(number());
        else if (k == "--max-body-mb") max_body_mb = number();
        else if (k == "--max-connections") limits.max_connections = static_cast<int>(number());
        else if (k == "--score-threshold") sopts.score_threshold = static_cast<float>(number());
        else usage_error("unknown option " + k);
    }
    if (engine_path.empty()) usage_error("--engine is required");
    limits.max_body_bytes = static_cast<size_t>(max_body_mb * 1024 * 1024);

    // Signals go to a dedicated thread (sigwait), never interrupting the workers.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    try {
        yolact::EngineOptions eopts;
        eopts.sidecar = sidecar;
        eopts.plugin_library = plugins;
        eopts.device = device;
        auto engine = yolact::TensorRTEngine::load(engine_path, eopts);
        yolact::DetectionService service(*engine, sopts);
        yolact::http::Server server(host, port, limits,
                                    [&service](const yolact::http::Request& r) { return service.handle(r); });
        std::thread waiter([&] {
            int sig = 0;
            sigwait(&signals, &sig);
            std::fprintf(stderr, "yolact_server: signal %d: draining\n", sig);
            server.stop();
        });
        std::fprintf(stderr, "yolact_server: listening on http://%s:%d (max batch %d, queue %zu)\n", host.c_str(),
                     server.port(), service.max_batch(), sopts.max_queue);
        server.serve();    // returns after stop(), once open connections are done
        service.shutdown();  // finish anything still queued
        waiter.join();
        std::fprintf(stderr, "yolact_server: stopped\n");
    } catch (const yolact::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
    return 0;
}
