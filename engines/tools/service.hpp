// The detection service of yolact_server, over any yolact::Backend: dynamic batching of concurrent
// requests (up to the engine's batch profile, within a short window), a bounded queue (503 past it),
// size limits and JSON responses with COCO RLE masks. HTTP is cpp-httplib; HttpServer adds what it
// lacks: every error reply closes the connection (nothing behind a rejected request is ever read as
// a request), a cap on the request head, and a connection limit answered with 503.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <httplib.h>

#include "yolact/backend.hpp"

namespace yolact {

struct ServiceOptions {
    int max_batch = 0;            // 0: the engine's max batch
    int batch_window_us = 2000;   // how long the first request of a batch waits for company
    size_t max_queue = 64;        // queued images beyond this are answered 503
    size_t max_pixels = 40u * 1000 * 1000;  // decoded image size limit (413)
    float score_threshold = 0.f;  // default when the request has none
    int top_k = -1;
    int request_timeout_ms = 60000;  // 504 past it
    std::string model_name = "yolact";
};

struct ServiceStats {
    long long requests = 0, images = 0, batches = 0, rejected = 0, errors = 0;
    size_t queued = 0;
};

// A reply independent of the HTTP library (status, JSON body, extra headers).
struct Reply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
};

// {"error": {"status": N, "message": "..."}}
Reply error_reply(int status, const std::string& message);

class DetectionService {
public:
    DetectionService(Backend& backend, const ServiceOptions& options);
    ~DetectionService();  // shutdown()

    Reply health() const;  // GET /health (503 while draining)
    Reply model() const;   // GET /v1/model
    // POST /v1/detect: raw image body; query score_threshold=&top_k=&masks=0|1.
    Reply detect(const httplib::Request& request);

    // Stops taking new work (503), finishes everything queued, joins the worker. Idempotent.
    void shutdown();
    ServiceStats stats() const;
    int max_batch() const { return max_batch_; }

private:
    struct Pending {
        Image image;
        PostprocessOptions post;
        bool masks = true;
        std::promise<std::string> result;
    };
    void worker();

    Backend& backend_;
    ServiceOptions options_;
    int max_batch_ = 1;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::unique_ptr<Pending>> queue_;
    bool stopping_ = false;
    ServiceStats stats_;
    std::thread worker_;
};

struct HttpLimits {
    size_t max_header_bytes = 16 * 1024;         // request line + headers; past it: 400 and close
    size_t max_body_bytes = 20 * 1024 * 1024;    // 413 and close
    int read_timeout_s = 15;                     // while reading one request
    int keep_alive_timeout_s = 5;                // idle between requests on one connection
    int max_connections = 64;                    // more are answered 503 at once
};

class HttpServer : public httplib::Server {
public:
    HttpServer(DetectionService& service, const HttpLimits& limits);
    // Binds; port 0 picks a free one. Returns the port; throws Error when it cannot bind.
    int bind(const std::string& host, int port);
    // Serves until stop(); connections in progress finish first.
    void serve();
    void stop_and_wait();  // stop() that also waits until serve() has started (no lost stop)
    int active_connections() const { return active_.load(); }

    // One connection's bytes through the same code path, without a socket (the fuzz target).
    // Returns what the server wrote back.
    std::string process_bytes(const std::string& input);

private:
    bool process_and_close_socket(socket_t sock) override;
    bool serve_stream(httplib::Stream& stream, int fd);
    DetectionService& service_;
    HttpLimits limits_;
    std::atomic<int> active_{0};
};

}  // namespace yolact
