// The C++ service over real loopback HTTP (cpp-httplib), with a backend that replays the Python
// reference's engine outputs for the real images (no GPU here): JPEG uploads, dynamic batching,
// bounded queue, bad requests, connection closing after errors (no request smuggling) and graceful
// shutdown. The client is raw sockets, so the bytes on the wire are exactly what the test says.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include <doctest/doctest.h>

#include "fixtures.hpp"
#include "service.hpp"
#include "yolact/codec.hpp"
#include "yolact/rle.hpp"

using namespace yolact;
using nlohmann::json;

namespace {

// Returns the recorded contract outputs of the fixture image equal to each input.
class ReplayBackend : public Backend {
public:
    explicit ReplayBackend(int max_batch, int delay_ms = 0) : delay_ms_(delay_ms) {
        for (int i = 0; i < fx::num_images(); ++i) {
            images_.push_back(fx::image(i));
            outputs_.push_back(fx::contract(i));
        }
        info_.geometry.max_batch = max_batch;
        info_.class_names = fx::manifest().at("class_names").get<std::vector<std::string>>();
        info_.category_ids = fx::manifest().at("category_ids").get<std::vector<int>>();
    }
    const EngineInfo& info() const override { return info_; }
    BatchOutputs run(const std::vector<ImageView>& batch) override {
        if (static_cast<int>(batch.size()) > info_.geometry.max_batch) throw Error("batch too large");
        if (delay_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
        ++batches;
        largest_batch = std::max<int>(largest_batch, static_cast<int>(batch.size()));
        const BatchOutputs& first = outputs_[0];
        BatchOutputs out;
        out.resize(static_cast<int>(batch.size()), first.max_detections, first.proto_height, first.proto_width);
        const size_t k = first.max_detections, plane = static_cast<size_t>(first.proto_height) * first.proto_width;
        for (size_t b = 0; b < batch.size(); ++b) {
            const BatchOutputs& o = outputs_[match(batch[b])];
            out.num_detections[b] = o.num_detections[0];
            std::copy(o.boxes.begin(), o.boxes.end(), out.boxes.begin() + static_cast<long>(b * k * 4));
            std::copy(o.scores.begin(), o.scores.end(), out.scores.begin() + static_cast<long>(b * k));
            std::copy(o.mask_scores.begin(), o.mask_scores.end(), out.mask_scores.begin() + static_cast<long>(b * k));
            std::copy(o.classes.begin(), o.classes.end(), out.classes.begin() + static_cast<long>(b * k));
            std::copy(o.masks.begin(), o.masks.end(), out.masks.begin() + static_cast<long>(b * k * plane));
        }
        return out;
    }
    // Closest fixture image of the same size (mean absolute difference).
    size_t match(const ImageView& im) const {
        size_t best = images_.size();
        double best_err = 1e30;
        for (size_t i = 0; i < images_.size(); ++i) {
            if (images_[i].height != im.height || images_[i].width != im.width) continue;
            double err = 0;
            for (int y = 0; y < im.height; ++y) {
                const uint8_t* a = im.row(y);
                const uint8_t* b = images_[i].data.data() + static_cast<size_t>(y) * im.width * 3;
                for (int x = 0; x < im.width * 3; ++x) err += std::abs(a[x] - b[x]);
            }
            if (err < best_err) { best_err = err; best = i; }
        }
        if (best == images_.size()) throw Error("replay: no recorded image of this size");
        return best;
    }
    std::atomic<int> batches{0};
    std::atomic<int> largest_batch{0};

private:
    int delay_ms_;
    EngineInfo info_;
    std::vector<Image> images_;
    std::vector<BatchOutputs> outputs_;
};

struct Answer {
    int status = 0;
    std::string body;
    int replies = 0;     // HTTP responses seen on the connection
    std::string raw;
};

// Sends `wire` on one connection, half-closes, and reads until the server closes.
Answer talk(int port, const std::string& wire) {
    Answer r;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return r;
    }
    size_t off = 0;
    while (off < wire.size()) {
        const ssize_t n = ::send(fd, wire.data() + off, wire.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;  // the server may answer (413) and close before reading everything
        off += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) r.raw.append(buf, static_cast<size_t>(n));
    ::close(fd);
    for (size_t p = r.raw.find("HTTP/1.1 "); p != std::string::npos; p = r.raw.find("HTTP/1.1 ", p + 1)) ++r.replies;
    if (r.raw.compare(0, 9, "HTTP/1.1 ") == 0) r.status = std::atoi(r.raw.c_str() + 9);
    const size_t head = r.raw.find("\r\n\r\n");
    if (head != std::string::npos) r.body = r.raw.substr(head + 4);
    return r;
}

std::string wire_request(const std::string& method, const std::string& target, const std::string& body = "",
                         const std::string& content_type = "", bool send_length = true, const std::string& extra = "",
                         bool close = true) {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + (close ? "Connection: close\r\n" : "") + extra;
    if (!content_type.empty()) req += "Content-Type: " + content_type + "\r\n";
    if (send_length) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return req + "\r\n" + body;
}

// One request per connection (Connection: close).
Answer request(int port, const std::string& method, const std::string& target, const std::string& body = "",
               const std::string& content_type = "", bool send_length = true, const std::string& extra = "") {
    return talk(port, wire_request(method, target, body, content_type, send_length, extra));
}

std::string jpeg_bytes(int i) {
    return fx::read_text(fx::manifest().at("images")[i].at("source").get<std::string>());
}

struct Running {
    ReplayBackend backend;
    DetectionService service;
    HttpServer server;
    int port;
    std::thread thread;
    Running(int max_batch, int delay_ms, ServiceOptions so, HttpLimits limits)
        : backend(max_batch, delay_ms),
          service(backend, so),
          server(service, limits),
          port(server.bind("127.0.0.1", 0)),
          thread([this] { server.serve(); }) {}
    ~Running() { stop(); }
    void stop() {
        server.stop_and_wait();
        if (thread.joinable()) thread.join();
        service.shutdown();
    }
};

}  // namespace

TEST_CASE("fx_service_jpeg_decode_matches_opencv") {
    if (!codec_has_jpeg()) {
        std::fprintf(stderr, "  skipped: built without libjpeg\n");
        return;
    }
    int max_diff = 0;
    for (int i = 0; i < fx::num_images(); ++i) {
        const std::string bytes = jpeg_bytes(i);
        const Image mine = decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        const Image ref = fx::image(i);
        CHECK_EQ(mine.height, ref.height);
        CHECK_EQ(mine.width, ref.width);
        if (mine.data.size() != ref.data.size()) continue;
        for (size_t k = 0; k < mine.data.size(); ++k) max_diff = std::max(max_diff, std::abs(mine.data[k] - ref.data[k]));
    }
    std::fprintf(stderr, "  libjpeg vs cv2.imread on %d JPEGs: max pixel difference %d\n", fx::num_images(), max_diff);
    CHECK(max_diff <= 2);
}

TEST_CASE("fx_service_end_to_end") {
    if (!codec_has_jpeg()) return;
    ServiceOptions so;
    so.batch_window_us = 20000;
    so.max_queue = 64;
    Running run(4, 0, so, HttpLimits());
    const int port = run.port;
    Answer h = request(port, "GET", "/health");
    CHECK_EQ(h.status, 200);
    CHECK(h.body.find("\"status\":\"ok\"") != std::string::npos);
    CHECK_EQ(request(port, "GET", "/v1/model").status, 200);

    // All images at once from concurrent clients: they must be batched and each answer correct.
    const int n = fx::num_images();
    std::vector<Answer> replies(n);
    std::vector<std::thread> clients;
    for (int i = 0; i < n; ++i) {
        clients.emplace_back([&, i] {
            replies[i] = request(port, "POST", "/v1/detect?score_threshold=0.05&top_k=15", jpeg_bytes(i), "image/jpeg");
        });
    }
    for (auto& t : clients) t.join();
    double worst = 0;
    for (int i = 0; i < n; ++i) {
        CHECK_EQ(replies[i].status, 200);
        if (replies[i].status != 200) {
            std::fprintf(stderr, "  reply %d: %s\n", i, replies[i].body.c_str());
            continue;
        }
        const json v = json::parse(replies[i].body);
        const json& res = v.at("results")[0];
        const json& dets = res.at("detections");
        const std::string p = "ref_" + std::to_string(i) + "_";
        const npy::Array rb = fx::array(p + "boxes"), rc = fx::array(p + "classes"), rm = fx::array(p + "masks");
        CHECK_EQ(dets.size(), static_cast<size_t>(rb.shape[0]));
        const int h_ = res.at("height").get<int>(), w_ = res.at("width").get<int>();
        for (size_t k = 0; k < std::min(dets.size(), static_cast<size_t>(rb.shape[0])); ++k) {
            const json& box = dets[k].at("box");
            for (int c = 0; c < 4; ++c) CHECK_EQ(box[c].get<int>(), rb.as<int32_t>()[k * 4 + c]);
            CHECK_EQ(dets[k].at("class_id").get<int>(), rc.as<int32_t>()[k]);
            const Mask m = rle_decode(rle_from_string(dets[k].at("mask").at("counts").get<std::string>()), h_, w_);
            const uint8_t* ref = rm.as<uint8_t>() + k * static_cast<size_t>(h_) * w_;
            size_t diff = 0;
            for (size_t q = 0; q < m.data.size(); ++q) diff += (m.data[q] != 0) != (ref[q] != 0);
            worst = std::max(worst, static_cast<double>(diff) / m.data.size());
        }
    }
    std::fprintf(stderr, "  %d concurrent uploads -> %d batches (largest %d); worst mask difference %.4f%%\n", n,
                 run.backend.batches.load(), run.backend.largest_batch.load(), 100 * worst);
    CHECK(worst <= 0.005);
    CHECK(run.backend.largest_batch.load() > 1);  // concurrent requests were batched
    CHECK(run.backend.largest_batch.load() <= 4);
    // masks=0 leaves the RLE out.
    const Answer nomask = request(port, "POST", "/v1/detect?masks=0", jpeg_bytes(0), "image/jpeg");
    CHECK_EQ(nomask.status, 200);
    CHECK(nomask.body.find("\"counts\"") == std::string::npos);
}

TEST_CASE("fx_service_bad_requests") {
    ServiceOptions so;
    so.max_pixels = 1000 * 1000;
    HttpLimits limits;
    limits.max_body_bytes = 1 << 20;
    Running run(2, 0, so, limits);
    const int port = run.port;
    struct Case {
        const char* what;
        Answer reply;
        int want;
    } cases[] = {
        {"not an image", request(port, "POST", "/v1/detect", "hello world, not an image", "image/jpeg"), 400},
        {"wrong content type", request(port, "POST", "/v1/detect", "{}", "application/json"), 415},
        {"no content type", request(port, "POST", "/v1/detect", "abc"), 415},
        {"huge upload", request(port, "POST", "/v1/detect", std::string(3 << 20, 'x'), "image/jpeg"), 413},
        {"too many pixels", request(port, "POST", "/v1/detect", "P6\n5000 5000\n255\n" + std::string(64, '\0'), "image/x-portable-pixmap"), 413},
        {"no length, empty", request(port, "POST", "/v1/detect", "", "image/jpeg", false), 400},
        {"chunked, empty", request(port, "POST", "/v1/detect", "0\r\n\r\n", "image/jpeg", false, "Transfer-Encoding: chunked\r\n"), 400},
        {"bad threshold", request(port, "POST", "/v1/detect?score_threshold=abc", "x", "image/jpeg"), 400},
        {"bad top_k", request(port, "POST", "/v1/detect?top_k=-1", "x", "image/jpeg"), 400},
        {"empty body", request(port, "POST", "/v1/detect", "", "image/jpeg"), 400},
        {"unknown route", request(port, "GET", "/nope"), 404},
        {"wrong method", request(port, "GET", "/v1/detect"), 405},
        {"huge header", request(port, "GET", "/health", "", "", true, "X-Big: " + std::string(40000, 'a') + "\r\n"), 400},
        {"many headers", request(port, "GET", "/health", "", "", true, [] { std::string h; for (int i = 0; i < 3000; ++i) h += "X-" + std::to_string(i) + ": 1\r\n"; return h; }()), 400},
        {"bad request line", talk(port, "GARBAGE\r\n\r\n"), 400},
        {"long target", request(port, "GET", "/health?" + std::string(9000, 'q')), 414},
    };
    for (const Case& c : cases) {
        CHECK_MESSAGE(c.reply.status == c.want, c.what << ": got " << c.reply.status << " " << c.reply.body);
        CHECK_MESSAGE(c.reply.replies == 1, c.what);
        if (c.reply.status >= 400) {
            CHECK_MESSAGE(c.reply.body.find("\"message\"") != std::string::npos, c.what << ": " << c.reply.body);
            CHECK_MESSAGE(c.reply.raw.find("Connection: close") != std::string::npos, c.what);
        }
    }
    // Still alive and well.
    CHECK_EQ(request(port, "GET", "/health").status, 200);
    if (codec_has_jpeg()) CHECK_EQ(request(port, "POST", "/v1/detect", jpeg_bytes(0), "image/jpeg").status, 200);
}

TEST_CASE("fx_service_overload_503_and_drain") {
    if (!codec_has_jpeg()) return;
    ServiceOptions so;
    so.max_queue = 2;
    so.batch_window_us = 0;
    Running run(1, 150, so, HttpLimits());  // slow backend, batch 1, queue 2
    const int port = run.port;
    const std::string img = jpeg_bytes(0);
    const int n = 12;
    std::vector<Answer> replies(n);
    std::vector<std::thread> clients;
    for (int i = 0; i < n; ++i) {
        clients.emplace_back([&, i] { replies[i] = request(port, "POST", "/v1/detect", img, "image/jpeg"); });
    }
    for (auto& t : clients) t.join();
    int ok = 0, busy = 0, other = 0;
    for (const Answer& r : replies) {
        if (r.status == 200) ++ok;
        else if (r.status == 503 && r.body.find("overloaded") != std::string::npos) ++busy;
        else ++other;
    }
    std::fprintf(stderr, "  12 concurrent requests, queue 2, batch 1: %d ok, %d rejected 503, %d other\n", ok, busy, other);
    CHECK_EQ(other, 0);
    CHECK(busy > 0);
    CHECK(ok >= 3);  // the one running + the two queued at least
    // Graceful shutdown: requests in flight finish with 200, new ones are refused.
    std::vector<Answer> inflight(2);
    std::thread a([&] { inflight[0] = request(port, "POST", "/v1/detect", img, "image/jpeg"); });
    std::thread b([&] { inflight[1] = request(port, "POST", "/v1/detect", img, "image/jpeg"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    run.stop();
    a.join();
    b.join();
    CHECK_EQ(inflight[0].status, 200);
    CHECK_EQ(inflight[1].status, 200);
    CHECK_EQ(request(port, "GET", "/health").status, 0);  // no longer listening
}

// Keep-alive works for good requests; an error reply closes the connection, so whatever follows a
// rejected request (here hidden behind an oversized header block) is never run.
TEST_CASE("fx_service_errors_close_the_connection") {
    Running run(2, 0, ServiceOptions(), HttpLimits());
    const int port = run.port;
    const std::string health = wire_request("GET", "/health", "", "", false, "", false);
    const Answer two = talk(port, health + health);
    CHECK_EQ(two.replies, 2);
    CHECK_EQ(two.status, 200);

    const std::string hidden = wire_request("POST", "/v1/detect", jpeg_bytes(0), "image/jpeg", true, "", false);
    const std::string smuggle = "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(20000, 'a') + "\r\n\r\n" + hidden;
    const long long before = run.service.stats().requests;
    const Answer a = talk(port, smuggle);
    CHECK_EQ(a.replies, 1);
    CHECK_EQ(a.status, 400);
    CHECK(a.raw.find("Connection: close") != std::string::npos);
    // The same behind an over-long single header line that cpp-httplib itself rejects (8 KiB per line).
    HttpLimits roomy;
    roomy.max_header_bytes = 1 << 20;
    Running run2(2, 0, ServiceOptions(), roomy);
    const Answer b = talk(run2.port, "GET /health HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n" + hidden);
    CHECK_EQ(b.replies, 1);
    CHECK_EQ(b.status, 400);
    // A 404 and a 413 close too.
    const Answer c = talk(port, wire_request("GET", "/nope", "", "", false, "", false) + hidden);
    CHECK_EQ(c.replies, 1);
    CHECK_EQ(c.status, 404);
    CHECK_EQ(run.service.stats().requests, before);  // the hidden detect request never ran
    CHECK_EQ(run2.service.stats().requests, 0);
    CHECK_EQ(run.backend.batches.load(), 0);
}

// The fuzz target's entry point: bytes in, bytes out, same code path as a socket.
TEST_CASE("fx_service_process_bytes") {
    ReplayBackend backend(1);
    DetectionService service(backend, ServiceOptions());
    HttpServer server(service, HttpLimits());
    const std::string out = server.process_bytes(wire_request("GET", "/health", "", "", false, "", false) +
                                                 wire_request("GET", "/v1/model", "", "", false, "", false) + "JUNK\r\n\r\n" +
                                                 wire_request("GET", "/health"));
    CHECK(out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    size_t replies = 0;
    for (size_t p = out.find("HTTP/1.1 "); p != std::string::npos; p = out.find("HTTP/1.1 ", p + 1)) ++replies;
    CHECK_EQ(replies, 3u);  // health, model, 400 for the junk; nothing after it
    CHECK(out.find("HTTP/1.1 400 Bad Request") != std::string::npos);
}
