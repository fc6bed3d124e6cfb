// A small HTTP/1.1 server for the example C++ service: one thread per connection (bounded),
// keep-alive, Content-Length bodies only, strict limits on header and body sizes. POSIX sockets.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace yolact {
namespace http {

struct Request {
    std::string method, target, path, query, version;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;

    const std::string* header(const std::string& lower_name) const;
    // Query parameter value (percent-decoded) or nullptr.
    bool query_param(const std::string& name, std::string& value) const;
};

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

struct Limits {
    size_t max_header_bytes = 16 * 1024;
    size_t max_body_bytes = 20 * 1024 * 1024;
    int idle_timeout_ms = 15000;  // between requests on a kept-alive connection, and while reading one
    int max_connections = 64;     // more are answered 503 at once
};

const char* status_text(int status);
// {"error": {"status": N, "message": "..."}}
std::string error_body(int status, const std::string& message);
Response error_response(int status, const std::string& message);

// Parses a request head (request line + headers, without the final blank line). Returns 0 or the
// HTTP status of the problem (400, 505, 501), with `error` set.
int parse_head(const std::string& head, Request& req, std::string& error);

class Server {
public:
    using Handler = std::function<Response(const Request&)>;
    Server(const std::string& host, int port, const Limits& limits, Handler handler);
    ~Server();
    int port() const { return port_; }
    void serve();  // accept loop; returns after stop()
    void stop();   // thread-safe: closes the listening socket, lets open connections finish
    int active_connections() const { return active_.load(); }

private:
    void connection(int fd);
    int listen_fd_ = -1;
    int port_ = 0;
    Limits limits_;
    Handler handler_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> active_{0};
    void wait_idle();
    std::mutex mutex_;
    std::condition_variable idle_;
};

}  // namespace http
}  // namespace yolact
