// libFuzzer: arbitrary bytes as one HTTP connection to the detection service (cpp-httplib's parser,
// the head/body caps, routing, parameters, image decoding, batching) through HttpServer::process_bytes.
// The backend detects nothing, so every request is cheap. Crashes, leaks and UB are bugs; so is a
// reply after an error reply on the same connection.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "service.hpp"

namespace {

class EmptyBackend : public yolact::Backend {
public:
    EmptyBackend() {
        info_.geometry.max_batch = 2;
        info_.class_names = {"a", "b"};
        info_.category_ids = {1, 2};
    }
    const yolact::EngineInfo& info() const override { return info_; }
    yolact::BatchOutputs run(const std::vector<yolact::ImageView>& images) override {
        yolact::BatchOutputs out;
        out.resize(static_cast<int>(images.size()), 4, 8, 8);
        return out;
    }

private:
    yolact::EngineInfo info_;
};

struct Fixture {
    EmptyBackend backend;
    yolact::DetectionService service;
    yolact::HttpServer server;
    static yolact::ServiceOptions options() {
        yolact::ServiceOptions o;
        o.batch_window_us = 0;
        o.max_pixels = 1 << 20;
        return o;
    }
    static yolact::HttpLimits limits() {
        yolact::HttpLimits l;
        l.max_header_bytes = 4096;
        l.max_body_bytes = 1 << 16;
        return l;
    }
    Fixture() : service(backend, options()), server(service, limits()) {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Fixture* f = new Fixture();  // one service for the whole run (its worker thread stays)
    const std::string out = f->server.process_bytes(std::string(reinterpret_cast<const char*>(data), size));
    // Walk the replies (status line, headers, Content-Length body): after an error status nothing else
    // may be answered on this connection, and every reply must be well-formed.
    size_t pos = 0;
    while (pos < out.size()) {
        if (out.compare(pos, 9, "HTTP/1.1 ") != 0) std::abort();
        const int status = std::atoi(out.c_str() + pos + 9);
        const size_t head_end = out.find("\r\n\r\n", pos);
        if (head_end == std::string::npos) std::abort();
        size_t length = 0;
        const size_t cl = out.find("Content-Length: ", pos);
        if (cl != std::string::npos && cl < head_end) length = std::strtoul(out.c_str() + cl + 16, nullptr, 10);
        pos = head_end + 4;
        // A reply to HEAD has Content-Length but no body.
        if (status >= 200 && pos + length <= out.size() &&
            (pos + length == out.size() || out.compare(pos + length, 9, "HTTP/1.1 ") == 0)) {
            pos += length;
        }
        if (status >= 400 && pos < out.size()) std::abort();
    }
    return 0;
}
