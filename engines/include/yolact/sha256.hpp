// SHA-256 through OpenSSL's EVP interface, to match an engine and a plugin library with the hashes
// the sidecar records (the Python side uses hashlib; a 100 MB engine hashes in well under a second).
#pragma once

#include <cstddef>
#include <string>

namespace yolact {

std::string sha256_hex(const void* data, size_t size);  // lower-case hex digest
std::string sha256_file(const std::string& path);        // throws Error when unreadable

}  // namespace yolact
