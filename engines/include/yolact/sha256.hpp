// SHA-256 (FIPS 180-4), to match an engine and a plugin library with the hashes in the sidecar.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace yolact {

class Sha256 {
public:
    Sha256();
    void update(const void* data, size_t size);
    std::string hex();  // finishes; lower-case hex digest

private:
    void block(const uint8_t* p);
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t used_ = 0;
    uint64_t bits_ = 0;
};

std::string sha256_hex(const void* data, size_t size);
// Throws Error when the file cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace yolact
