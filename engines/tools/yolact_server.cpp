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

#include <CLI/CLI.hpp>

#include "service.hpp"
#include "yolact/tensorrt.hpp"

int main(int argc, char** argv) {
    std::string engine_path, sidecar, plugins, host = "127.0.0.1";
    int port = 8080, device = 0;
    double max_body_mb = 20, batch_window_ms = 2;
    yolact::ServiceOptions sopts;
    yolact::HttpLimits limits;
    CLI::App app{"yolact_server: HTTP detection service on a TensorRT engine", "yolact_server"};
    app.add_option("--engine", engine_path, "engine file (.plan)")->required()->check(CLI::ExistingFile);
    app.add_option("--sidecar", sidecar, "sidecar JSON (default: next to the engine)");
    app.add_option("--plugins", plugins, "libyolact_plugins.so (plugin-flavour engines)");
    app.add_option("--host", host, "address to listen on")->capture_default_str();
    app.add_option("--port", port, "port")->check(CLI::Range(0, 65535))->capture_default_str();
    app.add_option("--device", device, "CUDA device")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--max-batch", sopts.max_batch, "largest batch (0: the engine's)")->check(CLI::NonNegativeNumber);
    app.add_option("--batch-window-ms", batch_window_ms, "how long a request waits for company")->check(CLI::Range(0.0, 1000.0))->capture_default_str();
    app.add_option("--max-queue", sopts.max_queue, "queued images before 503")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--max-body-mb", max_body_mb, "largest upload (413 past it)")->check(CLI::Range(0.001, 1024.0))->capture_default_str();
    app.add_option("--max-connections", limits.max_connections, "open connections before 503")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--score-threshold", sopts.score_threshold, "default score threshold")->check(CLI::Range(0.f, 1.f))->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        return 0;
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "error: %s (yolact_server --help)\n", e.what());
        return 2;
    }
    sopts.batch_window_us = static_cast<int>(batch_window_ms * 1000);
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
        yolact::HttpServer server(service, limits);
        const int bound = server.bind(host, port);
        std::thread waiter([&] {
            int sig = 0;
            sigwait(&signals, &sig);
            std::fprintf(stderr, "yolact_server: signal %d: draining\n", sig);
            server.stop_and_wait();
        });
        std::fprintf(stderr, "yolact_server: listening on http://%s:%d (max batch %d, queue %zu)\n", host.c_str(),
                     bound, service.max_batch(), sopts.max_queue);
        server.serve();      // returns after stop(), once open connections are done
        service.shutdown();  // finish anything still queued
        waiter.join();
        std::fprintf(stderr, "yolact_server: stopped\n");
    } catch (const yolact::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
    return 0;
}
