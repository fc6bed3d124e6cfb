// The detection service of yolact_server, over any yolact::Backend: dynamic batching of concurrent
// requests (up to the engine's batch profile, within a short window), a bounded queue (503 past it),
// size limits and JSON responses with COCO RLE masks. HTTP routing lives in handle().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "http.hpp"
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

class DetectionService {
public:
    DetectionService(Backend& backend, const ServiceOptions& options);
    ~DetectionService();  // shutdown()

    // Routes: GET /health, GET /v1/model, POST /v1/detect (raw image body; ?score_threshold=&top_k=&masks=0|1).
    http::Response handle(const http::Request& request);

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

    http::Response detect(const http::Request& request);
    http::Response health() const;
    http::Response model() const;
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

}  // namespace yolact
