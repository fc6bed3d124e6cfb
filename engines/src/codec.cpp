// Image files through OpenCV (imgcodecs). Only JPEG, PNG and PPM/PGM are accepted: the format is
// recognised from its magic bytes and the size read from its header before anything is decoded, so
// an oversized upload is refused (ImageTooLarge) without allocating its pixels, and OpenCV's other
// decoders are not reachable from a service.
#include "yolact/codec.hpp"

#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

namespace yolact {
namespace {

enum class Format { Jpeg, Png, Pnm };

uint32_t be16(const uint8_t* p) { return (uint32_t(p[0]) << 8) | p[1]; }
uint32_t be32(const uint8_t* p) { return (be16(p) << 16) | be16(p + 2); }

// Width and height from the header; false when the header is incomplete.
bool header_size(Format f, const uint8_t* d, size_t n, size_t& w, size_t& h) {
    if (f == Format::Png) {  // signature, IHDR length + type, width, height
        if (n < 24) return false;
        w = be32(d + 16);
        h = be32(d + 20);
        return true;
    }
    if (f == Format::Jpeg) {  // walk the marker segments up to a start-of-frame
        size_t p = 2;
        while (p + 4 <= n) {
            if (d[p] != 0xFF) return false;
            const uint8_t marker = d[p + 1];
            if (marker == 0xFF) { ++p; continue; }  // fill byte
            const size_t len = be16(d + p + 2);
            const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
            if (sof) {
                if (p + 9 > n) return false;
                h = be16(d + p + 5);
                w = be16(d + p + 7);
                return true;
            }
            if (len < 2) return false;
            p += 2 + len;
        }
        return false;
    }
    // PNM: magic, then width height maxval separated by whitespace and comments.
    size_t p = 2, values[2] = {0, 0};
    for (size_t& v : values) {
        while (p < n && (std::isspace(d[p]) || d[p] == '#')) {
            if (d[p] == '#') while (p < n && d[p] != '\n') ++p;
            else ++p;
        }
        size_t digits = 0;
        while (p < n && d[p] >= '0' && d[p] <= '9' && digits < 9) v = v * 10 + (d[p++] - '0'), ++digits;
        if (digits == 0) return false;
    }
    w = values[0];
    h = values[1];
    return true;
}

const char* name(Format f) { return f == Format::Jpeg ? "JPEG" : f == Format::Png ? "PNG" : "PPM/PGM"; }

}  // namespace

bool codec_has_jpeg() { return cv::haveImageWriter(".jpg"); }
bool codec_has_png() { return cv::haveImageWriter(".png"); }

Image decode_image(const uint8_t* data, size_t size, size_t max_pixels) {
    if (!data || size < 8) throw Error("too few bytes for an image");
    Format f;
    if (data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) f = Format::Jpeg;
    else if (std::string(reinterpret_cast<const char*>(data), 8) == "\x89PNG\r\n\x1a\n") f = Format::Png;
    else if (data[0] == 'P' && (data[1] == '5' || data[1] == '6')) f = Format::Pnm;
    else throw Error("not an image (JPEG, PNG or binary PPM/PGM expected)");
    size_t w = 0, h = 0;
    if (!header_size(f, data, size, w, h)) throw Error(std::string("corrupt ") + name(f) + " header");
    if (w == 0 || h == 0) throw Error("image has zero width or height");
    if (w > 100000 || h > 100000 || w * h > max_pixels) {
        throw ImageTooLarge("image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels exceeds the limit of " +
                            std::to_string(max_pixels) + " pixels");
    }
    cv::Mat bgr;
    try {
        // IMREAD_COLOR: 3-channel BGR, EXIF orientation applied, as cv2.imread in the Python runtime.
        bgr = cv::imdecode(cv::Mat(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data)), cv::IMREAD_COLOR);
    } catch (const cv::Exception& e) {
        throw Error(std::string("corrupt ") + name(f) + " image: " + e.what());
    }
    if (bgr.empty() || bgr.type() != CV_8UC3) throw Error(std::string("corrupt or truncated ") + name(f) + " image");
    if (static_cast<size_t>(bgr.rows) * bgr.cols != w * h) throw Error(std::string("corrupt ") + name(f) + " image (size differs from its header)");
    Image im(bgr.rows, bgr.cols);
    for (int y = 0; y < bgr.rows; ++y) std::copy_n(bgr.ptr<uint8_t>(y), bgr.cols * 3, im.row(y));
    return im;
}

Image read_image(const std::string& path, size_t max_pixels) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot read image " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    const std::string bytes = ss.str();
    try {
        return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), max_pixels);
    } catch (const ImageTooLarge& e) {
        throw ImageTooLarge(path + ": " + e.what());
    } catch (const Error& e) {
        throw Error(path + ": " + e.what());
    }
}

void write_image(const std::string& path, const ImageView& im) {
    if (im.empty()) throw Error("write_image: empty image");
    const cv::Mat m(im.height, im.width, CV_8UC3, const_cast<uint8_t*>(im.data), im.row_bytes());
    bool ok = false;
    try {
        ok = cv::imwrite(path, m);
    } catch (const cv::Exception& e) {
        throw Error("cannot write " + path + ": " + e.what());
    }
    if (!ok) throw Error("cannot write " + path + " (unknown extension or unwritable folder)");
}

}  // namespace yolact
