#include "http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

#include "yolact/json.hpp"
#include "yolact/types.hpp"

namespace yolact {
namespace http {
namespace {

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string trim(const std::string& s) {
    size_t a = 0, b = s.size();
    while (a < b && (s[a] == ' ' || s[a] == '\t')) ++a;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) --b;
    return s.substr(a, b - a);
}

bool percent_decode(const std::string& in, std::string& out) {
    out.clear();
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+') {
            out.push_back(' ');
        } else if (in[i] == '%') {
            if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
                !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
                return false;
            }
            out.push_back(static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16)));
            i += 2;
        } else {
            out.push_back(in[i]);
        }
    }
    return true;
}

bool send_all(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

// Waits for readable data; false on timeout/error.
bool wait_readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    while (true) {
        const int r = ::poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        return r > 0;
    }
}

std::string serialize(const Response& r, bool keep_alive) {
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + status_text(r.status) + "\r\n";
    out += "Content-Type: " + r.content_type + "\r\n";
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    for (const auto& h : r.headers) out += h.first + ": " + h.second + "\r\n";
    out += "\r\n";
    out += r.body;
    return out;
}

}  // namespace

const std::string* Request::header(const std::string& name) const {
    for (const auto& h : headers) {
        if (h.first == name) return &h.second;
    }
    return nullptr;
}

bool Request::query_param(const std::string& name, std::string& value) const {
    size_t start = 0;
    while (start <= query.size()) {
        size_t amp = query.find('&', start);
        if (amp == std::string::npos) amp = query.size();
        const std::string part = query.substr(start, amp - start);
        const size_t eq = part.find('=');
        std::string key;
        if (percent_decode(part.substr(0, eq), key) && key == name) {
            return percent_decode(eq == std::string::npos ? "" : part.substr(eq + 1), value);
        }
        start = amp + 1;
    }
    return false;
}

const char* status_text(int s) {
    switch (s) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Payload Too Large";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Entity";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

std::string error_body(int status, const std::string& message) {
    std::string out = "{\"error\":{\"status\":" + std::to_string(status) + ",\"message\":";
    json::append_quoted(out, message);
    out += "}}";
    return out;
}

Response error_response(int status, const std::string& message) {
    Response r;
    r.status = status;
    r.body = error_body(status, message);
    return r;
}

int parse_head(const std::string& head, Request& req, std::string& error) {
    size_t eol = head.find("\r\n");
    const std::string line = head.substr(0, eol);
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos) {
        error = "malformed request line";
        return 400;
    }
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    req.version = line.substr(sp2 + 1);
    if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0") {
        error = "unsupported HTTP version '" + req.version + "'";
        return req.version.rfind("HTTP/", 0) == 0 ? 505 : 400;
    }
    if (req.target.empty() || req.target[0] != '/') {
        error = "request target must be an absolute path";
        return 400;
    }
    const size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    req.query = q == std::string::npos ? "" : req.target.substr(q + 1);
    while (eol != std::string::npos && eol + 2 < head.size()) {
        const size_t start = eol + 2;
        eol = head.find("\r\n", start);
        const std::string h = head.substr(start, eol == std::string::npos ? std::string::npos : eol - start);
        const size_t colon = h.find(':');
        if (colon == std::string::npos || colon == 0 || h[0] == ' ' || h[0] == '\t') {
            error = "malformed header line";
            return 400;
        }
        req.headers.emplace_back(lower(h.substr(0, colon)), trim(h.substr(colon + 1)));
    }
    if (const std::string* te = req.header("transfer-encoding")) {
        error = "Transfer-Encoding '" + *te + "' is not supported: send a Content-Length";
        return 501;
    }
    return 0;
}

Server::Server(const std::string& host, int port, const Limits& limits, Handler handler)
    : limits_(limits), handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw Error(std::string("socket: ") + std::strerror(errno));
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
        ::close(listen_fd_);
        throw Error("invalid IPv4 address '" + host + "'");
    }
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 128) != 0) {
        const std::string why = std::strerror(errno);
        ::close(listen_fd_);
        throw Error("cannot listen on " + host + ":" + std::to_string(port) + ": " + why);
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
}

Server::~Server() {
    stop();
    wait_idle();
    if (listen_fd_ >= 0) ::close(listen_fd_);
}

void Server::wait_idle() {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, [this] { return active_.load() == 0; });
}

void Server::stop() {
    if (stopping_.exchange(true)) return;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()/poll()
}

void Server::serve() {
    while (!stopping_.load()) {
        if (!wait_readable(listen_fd_, 200)) continue;
        if (stopping_.load()) break;
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (active_.load() >= limits_.max_connections) {
            send_all(fd, serialize(error_response(503, "too many open connections"), false));
            ::close(fd);
            continue;
        }
        ++active_;
        // Detached: a long-running server must not accumulate finished thread objects; the
        // destructor and serve() wait for active_ to reach 0 instead.
        try {
            std::thread([this, fd] {
                connection(fd);
                ::close(fd);
                std::lock_guard<std::mutex> lock(mutex_);
                --active_;
                idle_.notify_all();
            }).detach();
        } catch (const std::system_error&) {  // no thread available: refuse, do not crash
            send_all(fd, serialize(error_response(503, "server out of threads"), false));
            ::close(fd);
            std::lock_guard<std::mutex> lock(mutex_);
            --active_;
            idle_.notify_all();
        }
    }
    wait_idle();  // open connections finish their current request
}

void Server::connection(int fd) {
    std::string buf;
    char chunk[16384];
    while (true) {
        // Read the head.
        size_t head_end;
        while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
            if (buf.size() > limits_.max_header_bytes) {
                send_all(fd, serialize(error_response(431, "request head larger than " +
                                                           std::to_string(limits_.max_header_bytes) + " bytes"), false));
                return;
            }
            if (stopping_.load() && buf.empty()) return;
            if (!wait_readable(fd, buf.empty() && stopping_.load() ? 0 : limits_.idle_timeout_ms)) {
                if (!buf.empty()) send_all(fd, serialize(error_response(408, "timed out reading the request"), false));
                return;
            }
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n <= 0) return;
            buf.append(chunk, static_cast<size_t>(n));
        }
        Request req;
        std::string error;
        const int status = parse_head(buf.substr(0, head_end), req, error);
        if (status != 0) {
            send_all(fd, serialize(error_response(status, error), false));
            return;
        }
        buf.erase(0, head_end + 4);
        const std::string* conn = req.header("connection");
        bool keep_alive = req.version == "HTTP/1.1" ? !(conn && lower(*conn) == "close")
                                                    : (conn && lower(*conn) == "keep-alive");
        // Body: Content-Length only.
        size_t length = 0;
        if (const std::string* cl = req.header("content-length")) {
            if (cl->empty() || cl->size() > 15 || cl->find_first_not_of("0123456789") != std::string::npos) {
                send_all(fd, serialize(error_response(400, "invalid Content-Length"), false));
                return;
            }
            length = std::stoull(*cl);
        } else if (req.method == "POST" || req.method == "PUT") {
            send_all(fd, serialize(error_response(411, "Content-Length required"), false));
            return;
        }
        if (length > limits_.max_body_bytes) {
            // Answer without reading the body, then close (the client may still be sending).
            send_all(fd, serialize(error_response(413, "request body of " + std::to_string(length) +
                                                       " bytes exceeds the limit of " +
                                                       std::to_string(limits_.max_body_bytes) + " bytes"), false));
            // Lingering close: drop (a bounded part of) the body so the client reads our answer
            // instead of a connection reset.
            ::shutdown(fd, SHUT_WR);
            size_t left = std::min<size_t>(length, 64u << 20) - std::min(buf.size(), length);
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
            while (left > 0 && std::chrono::steady_clock::now() < deadline && wait_readable(fd, 500)) {
                const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
                if (n <= 0) break;
                left -= std::min(left, static_cast<size_t>(n));
            }
            return;
        }
        while (buf.size() < length) {
            if (!wait_readable(fd, limits_.idle_timeout_ms)) {
                send_all(fd, serialize(error_response(408, "timed out reading the request body"), false));
                return;
            }
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n <= 0) return;
            buf.append(chunk, static_cast<size_t>(n));
        }
        req.body = buf.substr(0, length);
        buf.erase(0, length);
        Response resp;
        try {
            resp = handler_(req);
        } catch (const std::exception& e) {
            resp = error_response(500, e.what());
        }
        if (stopping_.load()) keep_alive = false;
        if (!send_all(fd, serialize(resp, keep_alive)) || !keep_alive) return;
    }
}

}  // namespace http
}  // namespace yolact
