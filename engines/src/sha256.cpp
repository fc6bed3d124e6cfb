#include "yolact/sha256.hpp"

#include <openssl/evp.h>

#include <fstream>
#include <memory>
#include <vector>

#include "yolact/types.hpp"

namespace yolact {
namespace {

struct Digest {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
    Digest() {
        if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) throw Error("OpenSSL: SHA-256 unavailable");
    }
    void update(const void* p, size_t n) {
        if (EVP_DigestUpdate(ctx.get(), p, n) != 1) throw Error("OpenSSL: SHA-256 update failed");
    }
    std::string hex() {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) throw Error("OpenSSL: SHA-256 final failed");
        static const char digits[] = "0123456789abcdef";
        std::string out;
        for (unsigned int i = 0; i < len; ++i) {
            out.push_back(digits[md[i] >> 4]);
            out.push_back(digits[md[i] & 15]);
        }
        return out;
    }
};

}  // namespace

std::string sha256_hex(const void* data, size_t size) {
    Digest d;
    d.update(data, size);
    return d.hex();
}

std::string sha256_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot read " + path);
    Digest d;
    std::vector<char> buf(1 << 20);
    while (f) {
        f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        if (f.gcount() > 0) d.update(buf.data(), static_cast<size_t>(f.gcount()));
    }
    if (f.bad()) throw Error("cannot read " + path);
    return d.hex();
}

}  // namespace yolact
