#include "service.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "yolact/codec.hpp"
#include "yolact/json.hpp"
#include "yolact/results.hpp"

namespace yolact {
namespace {

bool parse_float(const std::string& s, float& out) {
    if (s.empty()) return false;
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || !std::isfinite(d)) return false;
    out = static_cast<float>(d);
    return true;
}

bool parse_int(const std::string& s, int& out) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    out = std::atoi(s.c_str());
    return true;
}

bool image_content_type(const std::string& ct) {
    const std::string base = ct.substr(0, ct.find(';'));
    return base == "image/jpeg" || base == "image/png" || base == "image/x-portable-pixmap" ||
           base == "image/x-portable-graymap" || base == "application/octet-stream";
}

http::Response json_response(int status, std::string body) {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

}  // namespace

DetectionService::DetectionService(Backend& backend, const ServiceOptions& options)
    : backend_(backend), options_(options) {
    const int engine_max = std::max(1, backend.info().geometry.max_batch);
    max_batch_ = options.max_batch > 0 ? std::min(options.max_batch, engine_max) : engine_max;
    if (options_.max_queue < 1) throw Error("max_queue must be >= 1");
    worker_ = std::thread([this] { worker(); });
}

DetectionService::~DetectionService() { shutdown(); }

void DetectionService::shutdown() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (worker_.joinable()) worker_.join();
}

ServiceStats DetectionService::stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    ServiceStats s = stats_;
    s.queued = queue_.size();
    return s;
}

http::Response DetectionService::handle(const http::Request& req) {
    if (req.path == "/health") {
        if (req.method != "GET") return http::error_response(405, "use GET /health");
        return health();
    }
    if (req.path == "/v1/model") {
        if (req.method != "GET") return http::error_response(405, "use GET /v1/model");
        return model();
    }
    if (req.path == "/v1/detect") {
        if (req.method != "POST") return http::error_response(405, "use POST /v1/detect with an image body");
        return detect(req);
    }
    return http::error_response(404, "no route " + req.path + " (GET /health, GET /v1/model, POST /v1/detect)");
}

http::Response DetectionService::health() const {
    const ServiceStats s = stats();
    bool stopping;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping = stopping_;
    }
    std::string body = "{\"status\":\"";
    body += stopping ? "draining" : "ok";
    body += "\",\"queue\":" + std::to_string(s.queued) + ",\"max_queue\":" + std::to_string(options_.max_queue) +
            ",\"max_batch\":" + std::to_string(max_batch_) + ",\"requests\":" + std::to_string(s.requests) +
            ",\"images\":" + std::to_string(s.images) + ",\"batches\":" + std::to_string(s.batches) +
            ",\"rejected\":" + std::to_string(s.rejected) + ",\"errors\":" + std::to_string(s.errors) + "}";
    return json_response(stopping ? 503 : 200, body);
}

http::Response DetectionService::model() const {
    const EngineInfo& info = backend_.info();
    json::Value v = json::Value::object();
    v.set("name", json::Value::string(options_.model_name));
    v.set("preset", json::Value::string(info.preset));
    v.set("precision", json::Value::string(info.precision));
    v.set("tensorrt", json::Value::string(info.tensorrt.str()));
    json::Value size = json::Value::array();
    size.push(json::Value::number(info.geometry.network_height));
    size.push(json::Value::number(info.geometry.network_width));
    v.set("network_size", size);
    v.set("max_batch", json::Value::number(max_batch_));
    v.set("max_detections", json::Value::number(info.max_detections));
    json::Value names = json::Value::array();
    for (const std::string& n : info.class_names) names.push(json::Value::string(n));
    v.set("class_names", names);
    json::Value cats = json::Value::array();
    for (int c : info.category_ids) cats.push(json::Value::number(c));
    v.set("category_ids", cats);
    return json_response(200, v.dump());
}

http::Response DetectionService::detect(const http::Request& req) {
    const std::string* ct = req.header("content-type");
    if (!ct || !image_content_type(*ct)) {
        return http::error_response(415, "Content-Type must be image/jpeg, image/png, image/x-portable-pixmap or "
                                         "application/octet-stream (got " + (ct ? "'" + *ct + "'" : std::string("none")) + ")");
    }
    auto item = std::make_unique<Pending>();
    item->post.score_threshold = options_.score_threshold;
    item->post.top_k = options_.top_k;
    std::string v;
    if (req.query_param("score_threshold", v)) {
        if (!parse_float(v, item->post.score_threshold) || item->post.score_threshold < 0.f ||
            item->post.score_threshold > 1.f) {
            return http::error_response(400, "score_threshold must be a number in [0, 1], got '" + v + "'");
        }
    }
    if (req.query_param("top_k", v)) {
        if (!parse_int(v, item->post.top_k)) return http::error_response(400, "top_k must be an integer >= 0, got '" + v + "'");
    }
    if (req.query_param("masks", v)) {
        if (v == "1" || v == "true") item->masks = true;
        else if (v == "0" || v == "false") item->masks = false;
        else return http::error_response(400, "masks must be 0/1 or true/false, got '" + v + "'");
    }
    item->post.masks = item->masks;
    if (req.body.empty()) return http::error_response(400, "empty body: send the image bytes");
    try {
        item->image = decode_image(reinterpret_cast<const uint8_t*>(req.body.data()), req.body.size(),
                                   options_.max_pixels);
    } catch (const ImageTooLarge& e) {
        return http::error_response(413, e.what());
    } catch (const Error& e) {
        return http::error_response(400, e.what());
    }
    std::future<std::string> result = item->result.get_future();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ++stats_.requests;
        if (stopping_) {
            ++stats_.rejected;
            return http::error_response(503, "the service is shutting down");
        }
        if (queue_.size() >= options_.max_queue) {
            ++stats_.rejected;
            http::Response r = http::error_response(
                503, "overloaded: " + std::to_string(queue_.size()) + " images queued (limit " +
                         std::to_string(options_.max_queue) + "); retry later");
            r.headers.emplace_back("Retry-After", "1");
            return r;
        }
        queue_.push_back(std::move(item));
    }
    wake_.notify_one();
    if (result.wait_for(std::chrono::milliseconds(options_.request_timeout_ms)) != std::future_status::ready) {
        return http::error_response(504, "inference did not finish within " +
                                             std::to_string(options_.request_timeout_ms) + " ms");
    }
    try {
        std::string body = "{\"model\":";
        json::append_quoted(body, options_.model_name);
        body += ",\"results\":[" + result.get() + "]}";
        return json_response(200, body);
    } catch (const std::exception& e) {
        return http::error_response(500, std::string("inference failed: ") + e.what());
    }
}

void DetectionService::worker() {
    const EngineInfo& info = backend_.info();
    while (true) {
        std::vector<std::unique_ptr<Pending>> batch;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping and drained
            // Dynamic batching: give concurrent requests a short window to join.
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(options_.batch_window_us);
            wake_.wait_until(lock, deadline, [this] {
                return stopping_ || queue_.size() >= static_cast<size_t>(max_batch_);
            });
            while (!queue_.empty() && static_cast<int>(batch.size()) < max_batch_) {
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        std::vector<ImageView> views;
        for (const auto& p : batch) views.push_back(p->image.view());
        try {
            const BatchOutputs out = backend_.run(views);
            if (out.batch != static_cast<int>(batch.size())) throw Error("backend returned a wrong batch size");
            for (size_t i = 0; i < batch.size(); ++i) {
                Pending& p = *batch[i];
                try {
                    const auto dets = finalize(out.view(static_cast<int>(i)), p.image.height, p.image.width, p.post);
                    ResultFormat fmt;
                    fmt.masks = p.masks;
                    p.result.set_value(image_result_json(dets, p.image.height, p.image.width, info.class_names,
                                                         info.category_ids, fmt));
                } catch (...) {
                    p.result.set_exception(std::current_exception());
                }
            }
            std::lock_guard<std::mutex> lock(mutex_);
            ++stats_.batches;
            stats_.images += static_cast<long long>(batch.size());
        } catch (...) {
            for (auto& p : batch) p->result.set_exception(std::current_exception());
            std::lock_guard<std::mutex> lock(mutex_);
            stats_.errors += static_cast<long long>(batch.size());
        }
    }
}

}  // namespace yolact
