// Minimal .npy reader for the test fixtures (little-endian, C order; u1, i4, i8, f4).
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "yolact/types.hpp"

namespace npy {

struct Array {
    std::string dtype;  // "u1", "i4", "i8", "f4"
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;

    size_t size() const {
        size_t n = 1;
        for (int64_t d : shape) n *= static_cast<size_t>(d);
        return n;
    }
    template <typename T>
    const T* as() const { return reinterpret_cast<const T*>(bytes.data()); }
    template <typename T>
    std::vector<T> vec() const {
        std::vector<T> v(size());
        if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
        return v;
    }
};

inline Array load(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw yolact::Error("cannot open fixture " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    const std::string data = ss.str();
    if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0) throw yolact::Error(path + ": not .npy");
    const int major = static_cast<unsigned char>(data[6]);
    size_t header_len, offset;
    if (major == 1) {
        header_len = static_cast<unsigned char>(data[8]) | (static_cast<unsigned char>(data[9]) << 8);
        offset = 10;
    } else {
        header_len = 0;
        for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(data[8 + i])) << (8 * i);
        offset = 12;
    }
    const std::string header = data.substr(offset, header_len);
    Array a;
    const size_t d = header.find("'descr': '");
    if (d == std::string::npos) throw yolact::Error(path + ": no descr");
    std::string descr = header.substr(d + 10, header.find('\'', d + 10) - d - 10);
    if (descr[0] == '<' || descr[0] == '|') descr = descr.substr(1);
    a.dtype = descr;
    if (header.find("'fortran_order': True") != std::string::npos) throw yolact::Error(path + ": fortran order");
    const size_t s = header.find("'shape': (");
    const std::string shape = header.substr(s + 10, header.find(')', s) - s - 10);
    std::stringstream sh(shape);
    std::string item;
    while (std::getline(sh, item, ',')) {
        if (item.find_first_of("0123456789") != std::string::npos) a.shape.push_back(std::stoll(item));
    }
    const size_t elem = (descr == "u1" || descr == "b1") ? 1 : (descr == "i8" ? 8 : 4);
    a.bytes.assign(data.begin() + static_cast<long>(offset + header_len), data.end());
    if (a.bytes.size() != a.size() * elem) throw yolact::Error(path + ": size mismatch");
    return a;
}

}  // namespace npy
