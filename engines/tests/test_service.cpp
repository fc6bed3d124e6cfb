// The C++ service over real loopback HTTP, with a backend that replays the Python reference's
// engine outputs for the real images (no GPU here): JPEG uploads, dynamic batching, bounded queue,
// bad requests and graceful shutdown.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "fixtures.hpp"
#include "http.hpp"
#include "service.hpp"
#include "yolact/codec.hpp"
#include "yolact/rle.hpp"

using namespace yolact;

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
        for (const auto& v : fx::manifest().find("class_names")->as_array()) info_.class_names.push_back(v.as_string());
        for (const auto& v : fx::manifest().find("category_ids")->as_array()) info_.category_ids.push_back(static_cast<int>(v.as_int()));
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

struct Reply {
    int status = 0;
    std::string body;
};

// A blocking one-request client (Connection: close).
Reply request(int port, const std::string& method, const std::string& target, const std::string& body = "",
              const std::string& content_type = "", bool send_length = true, const std::string& extra = "") {
    Reply r;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return r;
    }
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra;
    if (!content_type.empty()) req += "Content-Type: " + content_type + "\r\n";
    if (send_length) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    size_t off = 0;
    while (off < req.size()) {
        const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;  // the server may answer (413) and close before reading everything
        off += static_cast<size_t>(n);
    }
    std::string resp;
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) resp.append(buf, static_cast<size_t>(n));
    ::close(fd);
    if (resp.compare(0, 9, "HTTP/1.1 ") == 0) r.status = std::atoi(resp.c_str() + 9);
    const size_t head = resp.find("\r\n\r\n");
    if (head != std::string::npos) r.body = resp.substr(head + 4);
    return r;
}

std::string jpeg_bytes(int i) {
    return fx::read_text(fx::manifest().find("images")->as_array()[i].find("source")->as_string());
}

struct Running {
    ReplayBackend backend;
    DetectionService service;
    http::Server server;
    std::thread thread;
    Running(int max_batch, int delay_ms, ServiceOptions so, http::Limits limits)
        : backend(max_batch, delay_ms),
          service(backend, so),
          server("127.0.0.1", 0, limits, [this](const http::Request& r) { return service.handle(r); }),
          thread([this] { server.serve(); }) {}
    ~Running() { stop(); }
    void stop() {
        server.stop();
        if (thread.joinable()) thread.join();
        service.shutdown();
    }
};

}  // namespace

TEST(fx_service_jpeg_decode_matches_opencv) {
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

TEST(fx_service_end_to_end) {
    if (!codec_has_jpeg()) return;
    ServiceOptions so;
    so.batch_window_us = 20000;
    so.max_queue = 64;
    Running run(4, 0, so, http::Limits());
    const int port = run.server.port();
    Reply h = request(port, "GET", "/health");
    CHECK_EQ(h.status, 200);
    CHECK(h.body.find("\"status\":\"ok\"") != std::string::npos);
    CHECK_EQ(request(port, "GET", "/v1/model").status, 200);

    // All images at once from concurrent clients: they must be batched and each answer correct.
    const int n = fx::num_images();
    std::vector<Reply> replies(n);
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
        const json::Value v = json::parse(replies[i].body, "reply");
        const json::Value& res = v.find("results")->as_array()[0];
        const auto& dets = res.find("detections")->as_array();
        const std::string p = "ref_" + std::to_string(i) + "_";
        const npy::Array rb = fx::array(p + "boxes"), rc = fx::array(p + "classes"), rm = fx::array(p + "masks");
        CHECK_EQ(dets.size(), static_cast<size_t>(rb.shape[0]));
        const int h_ = static_cast<int>(res.find("height")->as_int()), w_ = static_cast<int>(res.find("width")->as_int());
        for (size_t k = 0; k < std::min(dets.size(), static_cast<size_t>(rb.shape[0])); ++k) {
            const auto& box = dets[k].find("box")->as_array();
            for (int c = 0; c < 4; ++c) CHECK_EQ(box[c].as_int(), rb.as<int32_t>()[k * 4 + c]);
            CHECK_EQ(dets[k].find("class_id")->as_int(), rc.as<int32_t>()[k]);
            const Mask m = rle_decode(rle_from_string(dets[k].find("mask")->find("counts")->as_string()), h_, w_);
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
    const Reply nomask = request(port, "POST", "/v1/detect?masks=0", jpeg_bytes(0), "image/jpeg");
    CHECK_EQ(nomask.status, 200);
    CHECK(nomask.body.find("\"counts\"") == std::string::npos);
}

TEST(fx_service_bad_requests) {
    ServiceOptions so;
    so.max_pixels = 1000 * 1000;
    http::Limits limits;
    limits.max_body_bytes = 1 << 20;
    Running run(2, 0, so, limits);
    const int port = run.server.port();
    struct Case {
        const char* what;
        Reply reply;
        int want;
    } cases[] = {
        {"not an image", request(port, "POST", "/v1/detect", "hello world, not an image", "image/jpeg"), 400},
        {"wrong content type", request(port, "POST", "/v1/detect", "{}", "application/json"), 415},
        {"no content type", request(port, "POST", "/v1/detect", "abc"), 415},
        {"huge upload", request(port, "POST", "/v1/detect", std::string(3 << 20, 'x'), "image/jpeg"), 413},
        {"too many pixels", request(port, "POST", "/v1/detect", "P6\n5000 5000\n255\n" + std::string(64, '\0'), "image/x-portable-pixmap"), 413},
        {"no length", request(port, "POST", "/v1/detect", "", "image/jpeg", false), 411},
        {"chunked", request(port, "POST", "/v1/detect", "", "image/jpeg", false, "Transfer-Encoding: chunked\r\n"), 501},
        {"bad threshold", request(port, "POST", "/v1/detect?score_threshold=abc", "x", "image/jpeg"), 400},
        {"bad top_k", request(port, "POST", "/v1/detect?top_k=-1", "x", "image/jpeg"), 400},
        {"empty body", request(port, "POST", "/v1/detect", "", "image/jpeg"), 400},
        {"unknown route", request(port, "GET", "/nope"), 404},
        {"wrong method", request(port, "GET", "/v1/detect"), 405},
        {"huge header", request(port, "GET", "/health", "", "", true, "X-Big: " + std::string(40000, 'a') + "\r\n"), 431},
    };
    for (const Case& c : cases) {
        CHECK_MSG(c.reply.status == c.want, c.what << ": got " << c.reply.status << " " << c.reply.body);
        if (c.reply.status >= 400) CHECK_MSG(c.reply.body.find("\"message\"") != std::string::npos, c.what);
    }
    // Still alive and well.
    CHECK_EQ(request(port, "GET", "/health").status, 200);
    if (codec_has_jpeg()) CHECK_EQ(request(port, "POST", "/v1/detect", jpeg_bytes(0), "image/jpeg").status, 200);
}

TEST(fx_service_overload_503_and_drain) {
    if (!codec_has_jpeg()) return;
    ServiceOptions so;
    so.max_queue = 2;
    so.batch_window_us = 0;
    Running run(1, 150, so, http::Limits());  // slow backend, batch 1, queue 2
    const int port = run.server.port();
    const std::string img = jpeg_bytes(0);
    const int n = 12;
    std::vector<Reply> replies(n);
    std::vector<std::thread> clients;
    for (int i = 0; i < n; ++i) {
        clients.emplace_back([&, i] { replies[i] = request(port, "POST", "/v1/detect", img, "image/jpeg"); });
    }
    for (auto& t : clients) t.join();
    int ok = 0, busy = 0, other = 0;
    for (const Reply& r : replies) {
        if (r.status == 200) ++ok;
        else if (r.status == 503 && r.body.find("overloaded") != std::string::npos) ++busy;
        else ++other;
    }
    std::fprintf(stderr, "  12 concurrent requests, queue 2, batch 1: %d ok, %d rejected 503, %d other\n", ok, busy, other);
    CHECK_EQ(other, 0);
    CHECK(busy > 0);
    CHECK(ok >= 3);  // the one running + the two queued at least
    // Graceful shutdown: requests in flight finish with 200, new ones are refused.
    std::vector<Reply> inflight(2);
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
