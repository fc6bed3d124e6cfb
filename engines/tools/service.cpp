#include "service.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "yolact/codec.hpp"
#include "yolact/results.hpp"

namespace yolact {
namespace {

using ojson = nlohmann::ordered_json;

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

Reply json_reply(int status, std::string body) {
    Reply r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

// ---- HTTP plumbing ------------------------------------------------------------------------------

// Set by the error handler, read by the connection loop of the same thread: close after this reply.
thread_local bool t_close_after_reply = false;

// The request head (request line + headers) is capped while it is read: cpp-httplib reads it a byte
// at a time and bounds only each line, not their number or a line without CRLF.
class CappedStream : public httplib::Stream {
public:
    CappedStream(size_t max_head, size_t max_body) : max_head_(max_head), max_body_(max_body) {}
    void begin_request() {
        in_head_ = true;
        head_bytes_ = body_bytes_ = 0;
        line_len_ = 0;
        lines_ = 0;
    }
    ssize_t read(char* ptr, size_t size) override {
        if (size == 0) return 0;
        if (in_head_) size = 1;  // byte by byte, to see exactly where the head ends
        const ssize_t n = raw_read(ptr, size);
        if (n <= 0) return n;
        if (in_head_) {
            if (++head_bytes_ > max_head_) return -1;
            ++line_len_;
            if (*ptr == '\n') {
                if (lines_ > 0 && (line_len_ == 1 || (line_len_ == 2 && last_ == '\r'))) in_head_ = false;
                ++lines_;
                line_len_ = 0;
            }
            last_ = *ptr;
        } else if ((body_bytes_ += static_cast<size_t>(n)) > max_body_ + 65536) {  // + chunk framing
            return -1;
        }
        return n;
    }
    bool is_writable() const override { return true; }

protected:
    virtual ssize_t raw_read(char* ptr, size_t size) = 0;

private:
    size_t max_head_, max_body_;
    bool in_head_ = true;
    size_t head_bytes_ = 0, body_bytes_ = 0, line_len_ = 0, lines_ = 0;
    char last_ = 0;
};

class SocketStream : public CappedStream {
public:
    SocketStream(int fd, const HttpLimits& l) : CappedStream(l.max_header_bytes, l.max_body_bytes), fd_(fd), limits_(l) {}
    bool is_readable() const override { return pos_ < len_ || wait(POLLIN, limits_.read_timeout_s * 1000); }
    // Waits for the next request of a kept-alive connection; false: idle too long, closed, or stopping.
    template <class Running>
    bool next_request(Running running) {
        if (pos_ < len_) return true;
        for (int waited = 0; waited < limits_.keep_alive_timeout_s * 1000; waited += 100) {
            if (!running()) return false;
            if (wait(POLLIN, 100)) return true;
        }
        return false;
    }
    ssize_t write(const char* ptr, size_t size) override {
        if (!wait(POLLOUT, limits_.read_timeout_s * 1000)) return -1;
        return ::send(fd_, ptr, size, MSG_NOSIGNAL);
    }
    void get_remote_ip_and_port(std::string& ip, int& port) const override { address(true, ip, port); }
    void get_local_ip_and_port(std::string& ip, int& port) const override { address(false, ip, port); }
    socket_t socket() const override { return fd_; }

protected:
    ssize_t raw_read(char* ptr, size_t size) override {
        if (pos_ == len_) {
            if (!wait(POLLIN, limits_.read_timeout_s * 1000)) return -1;
            const ssize_t n = ::recv(fd_, buf_, sizeof buf_, 0);
            if (n <= 0) return n;
            pos_ = 0;
            len_ = static_cast<size_t>(n);
        }
        const size_t n = std::min(size, len_ - pos_);
        std::copy_n(buf_ + pos_, n, ptr);
        pos_ += n;
        return static_cast<ssize_t>(n);
    }

private:
    bool wait(short events, int timeout_ms) const {
        pollfd p{fd_, events, 0};
        return ::poll(&p, 1, timeout_ms) > 0 && (p.revents & (events | POLLHUP | POLLERR));
    }
    void address(bool peer, std::string& ip, int& port) const {
        sockaddr_storage a{};
        socklen_t n = sizeof a;
        const int rc = peer ? ::getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &n)
                            : ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &n);
        char text[INET6_ADDRSTRLEN] = "";
        port = 0;
        if (rc == 0 && a.ss_family == AF_INET) {
            const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
            ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
            port = ntohs(v4->sin_port);
        } else if (rc == 0 && a.ss_family == AF_INET6) {
            const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
            ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
            port = ntohs(v6->sin6_port);
        }
        ip = text;
    }
    int fd_;
    HttpLimits limits_;
    char buf_[16384];
    size_t pos_ = 0, len_ = 0;
};

class MemoryStream : public CappedStream {
public:
    MemoryStream(const std::string& in, const HttpLimits& l) : CappedStream(l.max_header_bytes, l.max_body_bytes), in_(in) {}
    bool is_readable() const override { return pos_ < in_.size(); }
    bool more() const { return pos_ < in_.size(); }
    ssize_t write(const char* ptr, size_t size) override {
        out.append(ptr, size);
        return static_cast<ssize_t>(size);
    }
    void get_remote_ip_and_port(std::string& ip, int& port) const override { ip = "127.0.0.1", port = 1; }
    void get_local_ip_and_port(std::string& ip, int& port) const override { ip = "127.0.0.1", port = 2; }
    socket_t socket() const override { return INVALID_SOCKET; }
    std::string out;

protected:
    ssize_t raw_read(char* ptr, size_t size) override {
        const size_t n = std::min(size, in_.size() - pos_);
        std::copy_n(in_.data() + pos_, n, ptr);
        pos_ += n;
        return static_cast<ssize_t>(n);
    }

private:
    const std::string& in_;
    size_t pos_ = 0;
};

void send_reply(const Reply& r, httplib::Response& res) {
    res.status = r.status;
    for (const auto& [k, v] : r.headers) res.set_header(k, v);
    res.set_content(r.body, r.content_type.c_str());
}

}  // namespace

Reply error_reply(int status, const std::string& message) {
    const ojson body = {{"error", {{"status", status}, {"message", message}}}};
    return json_reply(status, body.dump(-1, ' ', false, ojson::error_handler_t::replace));
}

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

Reply DetectionService::health() const {
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
    return json_reply(stopping ? 503 : 200, body);
}

Reply DetectionService::model() const {
    const EngineInfo& info = backend_.info();
    const ojson v = {{"name", options_.model_name},
                     {"preset", info.preset},
                     {"precision", info.precision},
                     {"tensorrt", info.tensorrt.str()},
                     {"network_size", {info.geometry.network_height, info.geometry.network_width}},
                     {"max_batch", max_batch_},
                     {"max_detections", info.max_detections},
                     {"class_names", info.class_names},
                     {"category_ids", info.category_ids}};
    return json_reply(200, v.dump(-1, ' ', false, ojson::error_handler_t::replace));
}

Reply DetectionService::detect(const httplib::Request& req) {
    const bool has_ct = req.has_header("Content-Type");
    const std::string ct = req.get_header_value("Content-Type");
    if (!has_ct || !image_content_type(ct)) {
        return error_reply(415, "Content-Type must be image/jpeg, image/png, image/x-portable-pixmap or "
                                         "application/octet-stream (got " + (has_ct ? "'" + ct + "'" : std::string("none")) + ")");
    }
    auto item = std::make_unique<Pending>();
    item->post.score_threshold = options_.score_threshold;
    item->post.top_k = options_.top_k;
    std::string v;
    const auto param = [&](const char* name) {
        if (!req.has_param(name)) return false;
        v = req.get_param_value(name);
        return true;
    };
    if (param("score_threshold")) {
        if (!parse_float(v, item->post.score_threshold) || item->post.score_threshold < 0.f ||
            item->post.score_threshold > 1.f) {
            return error_reply(400, "score_threshold must be a number in [0, 1], got '" + v + "'");
        }
    }
    if (param("top_k")) {
        if (!parse_int(v, item->post.top_k)) return error_reply(400, "top_k must be an integer >= 0, got '" + v + "'");
    }
    if (param("masks")) {
        if (v == "1" || v == "true") item->masks = true;
        else if (v == "0" || v == "false") item->masks = false;
        else return error_reply(400, "masks must be 0/1 or true/false, got '" + v + "'");
    }
    item->post.masks = item->masks;
    if (req.body.empty()) return error_reply(400, "empty body: send the image bytes");
    try {
        item->image = decode_image(reinterpret_cast<const uint8_t*>(req.body.data()), req.body.size(),
                                   options_.max_pixels);
    } catch (const ImageTooLarge& e) {
        return error_reply(413, e.what());
    } catch (const Error& e) {
        return error_reply(400, e.what());
    }
    std::future<std::string> result = item->result.get_future();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ++stats_.requests;
        if (stopping_) {
            ++stats_.rejected;
            return error_reply(503, "the service is shutting down");
        }
        if (queue_.size() >= options_.max_queue) {
            ++stats_.rejected;
            Reply r = error_reply(
                503, "overloaded: " + std::to_string(queue_.size()) + " images queued (limit " +
                         std::to_string(options_.max_queue) + "); retry later");
            r.headers.emplace_back("Retry-After", "1");
            return r;
        }
        queue_.push_back(std::move(item));
    }
    wake_.notify_one();
    if (result.wait_for(std::chrono::milliseconds(options_.request_timeout_ms)) != std::future_status::ready) {
        return error_reply(504, "inference did not finish within " +
                                             std::to_string(options_.request_timeout_ms) + " ms");
    }
    try {
        std::string body = ojson(options_.model_name).dump(-1, ' ', false, ojson::error_handler_t::replace);
        return json_reply(200, "{\"model\":" + body + ",\"results\":[" + result.get() + "]}");
    } catch (const std::exception& e) {
        return error_reply(500, std::string("inference failed: ") + e.what());
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

// ---- HttpServer ------------------------------------------------------------------------------------

HttpServer::HttpServer(DetectionService& service, const HttpLimits& limits) : service_(service), limits_(limits) {
    set_payload_max_length(limits.max_body_bytes);
    set_read_timeout(limits.read_timeout_s, 0);
    set_keep_alive_timeout(limits.keep_alive_timeout_s);
    // More threads than allowed connections: the extra ones answer 503 at once instead of queueing.
    const size_t threads = static_cast<size_t>(std::max(1, limits.max_connections)) + 4;
    new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    const auto route = [](const Reply& r, httplib::Response& res) { send_reply(r, res); };
    Get("/health", [this, route](const httplib::Request&, httplib::Response& res) { route(service_.health(), res); });
    Get("/v1/model", [this, route](const httplib::Request&, httplib::Response& res) { route(service_.model(), res); });
    Post("/v1/detect", [this, route](const httplib::Request& req, httplib::Response& res) { route(service_.detect(req), res); });
    for (const char* path : {"/health", "/v1/model"}) {
        const std::string msg = std::string("use GET ") + path;
        const auto wrong = [msg, route](const httplib::Request&, httplib::Response& res) { route(error_reply(405, msg), res); };
        Post(path, wrong);
        Put(path, wrong);
        Delete(path, wrong);
    }
    const auto wrong_detect = [route](const httplib::Request&, httplib::Response& res) {
        route(error_reply(405, "use POST /v1/detect with an image body"), res);
    };
    Get("/v1/detect", wrong_detect);
    Put("/v1/detect", wrong_detect);
    Delete("/v1/detect", wrong_detect);
    set_exception_handler([route](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        route(error_reply(500, "internal error: " + what), res);
    });
    // Every error reply (ours, or cpp-httplib's own: 400 malformed, 404, 413, 414) has a JSON body
    // and closes the connection.
    set_error_handler(HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
        t_close_after_reply = true;
        res.set_header("Connection", "close");
        if (res.body.empty()) {
            std::string msg = "malformed request or request head larger than " +
                              std::to_string(limits_.max_header_bytes) + " bytes";
            if (res.status == 404) msg = "no route " + req.path + " (GET /health, GET /v1/model, POST /v1/detect)";
            if (res.status == 413) msg = "request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes";
            if (res.status == 414) msg = "request target too long";
            if (res.status >= 500) msg = "internal error";
            send_reply(error_reply(res.status, msg), res);
        }
        return HandlerResponse::Handled;
    }));
}

int HttpServer::bind(const std::string& host, int port) {
    const int got = port == 0 ? bind_to_any_port(host) : (bind_to_port(host, port) ? port : -1);
    if (got <= 0) throw Error("cannot listen on " + host + ":" + std::to_string(port));
    return got;
}

void HttpServer::serve() { listen_after_bind(); }

void HttpServer::stop_and_wait() {
    while (!is_running() && svr_sock_ != INVALID_SOCKET) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    stop();
}

bool HttpServer::serve_stream(httplib::Stream& stream, int fd) {
    auto& capped = static_cast<CappedStream&>(stream);
    bool ok = true;
    for (int count = 0; count < 100; ++count) {
        if (fd >= 0) {
            if (!static_cast<SocketStream&>(stream).next_request([this] { return svr_sock_ != INVALID_SOCKET; })) break;
        } else if (!static_cast<MemoryStream&>(stream).more()) {
            break;
        }
        capped.begin_request();
        t_close_after_reply = false;
        bool closed = false;
        ok = process_request(stream, /*close_connection=*/false, closed, nullptr);
        if (!ok || closed || t_close_after_reply) break;
    }
    return ok;
}

bool HttpServer::process_and_close_socket(socket_t sock) {
    struct Count {
        std::atomic<int>& n;
        ~Count() { --n; }
    } count{active_};
    const bool over = ++active_ > limits_.max_connections;
    bool ok = false;
    if (over) {
        const std::string body = error_reply(503, "too many connections; retry later").body;
        const std::string reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                                  "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        (void)!::send(sock, reply.data(), reply.size(), MSG_NOSIGNAL);
    } else {
        SocketStream stream(sock, limits_);
        ok = serve_stream(stream, sock);
    }
    // Lingering close: stop sending, then drain briefly, so the client reads the reply instead of a
    // reset caused by request bytes the server never read (e.g. the rest of a 413 upload).
    ::shutdown(sock, SHUT_WR);
    char sink[16384];
    size_t drained = 0;
    pollfd p{sock, POLLIN, 0};
    while (drained < (size_t(8) << 20) && ::poll(&p, 1, 200) > 0) {
        const ssize_t n = ::recv(sock, sink, sizeof sink, 0);
        if (n <= 0) break;
        drained += static_cast<size_t>(n);
    }
    ::close(sock);
    return ok;
}

std::string HttpServer::process_bytes(const std::string& input) {
    MemoryStream stream(input, limits_);
    serve_stream(stream, -1);
    return stream.out;
}

}  // namespace yolact
