#include "yolact/rle.hpp"

#include <algorithm>
#include <string>

namespace yolact {

std::vector<uint32_t> rle_counts_box(const uint8_t* box, int top, int left, int box_h, int box_w,
                                     int height, int width) {
    const size_t total = static_cast<size_t>(std::max(height, 0)) * std::max(width, 0);
    std::vector<uint32_t> counts;
    size_t last = 0;  // start of the current run (column-major pixel index)
    uint8_t current = 0;  // runs start with zeros
    auto change = [&](size_t at) {
        counts.push_back(static_cast<uint32_t>(at - last));
        last = at;
        current = static_cast<uint8_t>(1 - current);
    };
    // Zeros above and below the box split a column's runs; a full-height box lets a run continue.
    const bool full_height = top == 0 && box_h == height;
    for (int x = 0; x < box_w; ++x) {
        const size_t base = static_cast<size_t>(left + x) * height + top;
        for (int y = 0; y < box_h; ++y) {
            const uint8_t v = box[static_cast<size_t>(y) * box_w + x] ? 1 : 0;
            if (v != current) change(base + y);
        }
        if (current && !full_height && base + box_h < total) change(base + box_h);
    }
    if (current && full_height && box_w > 0) {
        const size_t end = static_cast<size_t>(left + box_w) * height;
        if (end < total) change(end);
    }
    counts.push_back(static_cast<uint32_t>(total - last));
    return counts;
}

std::vector<uint32_t> rle_counts(const uint8_t* mask, int height, int width) {
    // Bounding box of the set pixels (a cache-friendly row-major scan), then runs inside it only.
    int t = height, b = -1, l = width, r = -1;
    for (int y = 0; y < height; ++y) {
        const uint8_t* row = mask + static_cast<size_t>(y) * width;
        for (int x = 0; x < width; ++x) {
            if (row[x]) {
                t = std::min(t, y);
                b = y;
                l = std::min(l, x);
                r = std::max(r, x);
            }
        }
    }
    if (b < 0) return rle_counts_box(nullptr, 0, 0, 0, 0, height, width);
    std::vector<uint8_t> box(static_cast<size_t>(b - t + 1) * (r - l + 1));
    for (int y = t; y <= b; ++y) {
        std::copy_n(mask + static_cast<size_t>(y) * width + l, r - l + 1,
                    box.data() + static_cast<size_t>(y - t) * (r - l + 1));
    }
    return rle_counts_box(box.data(), t, l, b - t + 1, r - l + 1, height, width);
}

std::vector<uint32_t> rle_counts(const Mask& mask) {
    return rle_counts(mask.data.data(), mask.height, mask.width);
}

std::vector<uint32_t> rle_counts(const MaskCrop& mask) {
    return rle_counts_box(mask.data.data(), mask.top, mask.left, mask.height, mask.width,
                          mask.image_height, mask.image_width);
}

std::string rle_to_string(const std::vector<uint32_t>& counts) {
    std::string s;
    s.reserve(counts.size() * 2);
    for (size_t i = 0; i < counts.size(); ++i) {
        long long x = static_cast<long long>(counts[i]);
        if (i > 2) x -= static_cast<long long>(counts[i - 2]);
        // Little-endian groups of 5 bits; bit 0x20 = "more follows"; the last group's 0x10 bit is
        // the sign. Python/C arithmetic shift semantics: floor division by 32.
        bool more = true;
        while (more) {
            int c = static_cast<int>(x & 0x1f);
            x = (x >= 0) ? (x >> 5) : -((-x + 31) >> 5);
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            s.push_back(static_cast<char>(c + 48));
        }
    }
    return s;
}

std::vector<uint32_t> rle_from_string(const std::string& text) {
    std::vector<uint32_t> counts;
    size_t p = 0;
    while (p < text.size()) {
        long long x = 0;
        int k = 0;
        bool more = true;
        while (more) {
            if (p >= text.size()) throw Error("RLE string ends inside a number");
            const int c = static_cast<int>(static_cast<unsigned char>(text[p])) - 48;
            if (c < 0 || c > 63) throw Error("RLE string has an invalid character");
            if (k > 12) throw Error("RLE string has a number that is too long");
            x |= static_cast<long long>(c & 0x1f) << (5 * k);
            more = (c & 0x20) != 0;
            ++p;
            ++k;
            if (!more && (c & 0x10)) x |= -(1LL << (5 * k));  // sign-extend
        }
        if (counts.size() > 2) x += static_cast<long long>(counts[counts.size() - 2]);
        if (x < 0 || x > 0xffffffffLL) throw Error("RLE string decodes to an invalid run length");
        counts.push_back(static_cast<uint32_t>(x));
    }
    return counts;
}

Mask rle_decode(const std::vector<uint32_t>& counts, int height, int width) {
    Mask m;
    m.height = height;
    m.width = width;
    const size_t total = static_cast<size_t>(height) * width;
    m.data.assign(total, 0);
    size_t pos = 0;
    uint8_t v = 0;
    for (uint32_t run : counts) {
        if (run > total - pos) throw Error("RLE counts exceed the mask size");
        for (uint32_t j = 0; j < run; ++j, ++pos) {
            const size_t x = pos / height, y = pos % height;  // column-major
            m.data[y * width + x] = v;
        }
        v = static_cast<uint8_t>(1 - v);
    }
    if (pos != total) throw Error("RLE counts do not cover the mask");
    return m;
}

CocoRle encode_coco_rle(const Mask& mask) {
    return {mask.height, mask.width, rle_to_string(rle_counts(mask))};
}

CocoRle encode_coco_rle(const MaskCrop& mask) {
    return {mask.image_height, mask.image_width, rle_to_string(rle_counts(mask))};
}

}  // namespace yolact
