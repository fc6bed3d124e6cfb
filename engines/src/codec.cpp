// Image decoding/encoding for the tools: libjpeg / libpng when found at build time, PPM/PGM always.
// libjpeg and libpng report errors through longjmp: the decoding frames below hold only trivially
// destructible locals between setjmp and the library calls.
#include "yolact/codec.hpp"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#ifdef YOLACT_HAVE_JPEG
#include <jpeglib.h>
#endif
#ifdef YOLACT_HAVE_PNG
#include <png.h>
#endif

namespace yolact {
namespace {

void check_pixels(size_t w, size_t h, size_t max_pixels) {
    if (w == 0 || h == 0) throw Error("image has zero width or height");
    if (w > 100000 || h > 100000 || w * h > max_pixels) {
        throw ImageTooLarge("image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels exceeds the limit of " +
                    std::to_string(max_pixels) + " pixels");
    }
}

// ---- PPM (P6) / PGM (P5), 8-bit ----------------------------------------------------------------
Image decode_pnm(const uint8_t* data, size_t size, size_t max_pixels) {
    size_t p = 2;
    const bool gray = data[1] == '5';
    auto skip = [&]() {
        while (p < size) {
            if (data[p] == '#') {
                while (p < size && data[p] != '\n') ++p;
            } else if (data[p] == ' ' || data[p] == '\t' || data[p] == '\n' || data[p] == '\r') {
                ++p;
            } else {
                break;
            }
        }
    };
    auto number = [&]() -> size_t {
        skip();
        size_t v = 0, digits = 0;
        while (p < size && data[p] >= '0' && data[p] <= '9' && digits < 9) {
            v = v * 10 + (data[p++] - '0');
            ++digits;
        }
        if (digits == 0) throw Error("corrupt PPM/PGM header");
        return v;
    };
    const size_t w = number(), h = number(), maxval = number();
    if (maxval != 255) throw Error("only 8-bit PPM/PGM images are supported");
    ++p;  // single whitespace before the raster
    check_pixels(w, h, max_pixels);
    const size_t ch = gray ? 1 : 3;
    if (p > size || size - p < w * h * ch) throw Error("truncated PPM/PGM image");
    Image im(static_cast<int>(h), static_cast<int>(w));
    const uint8_t* src = data + p;
    for (size_t i = 0; i < w * h; ++i) {
        if (gray) {
            im.data[i * 3] = im.data[i * 3 + 1] = im.data[i * 3 + 2] = src[i];
        } else {  // PPM is RGB
            im.data[i * 3] = src[i * 3 + 2];
            im.data[i * 3 + 1] = src[i * 3 + 1];
            im.data[i * 3 + 2] = src[i * 3];
        }
    }
    return im;
}

#ifdef YOLACT_HAVE_JPEG
struct JpegErr {
    jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
    JpegErr* e = reinterpret_cast<JpegErr*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}
void jpeg_quiet(j_common_ptr, int) {}

// Returns nullptr on success, else the error text (static storage in `err`).
const char* decode_jpeg_raw(const uint8_t* data, size_t size, size_t max_pixels, Image* out, JpegErr* err,
                            bool* too_big) {
    jpeg_decompress_struct cinfo;
    cinfo.err = jpeg_std_error(&err->mgr);
    err->mgr.error_exit = jpeg_fail;
    err->mgr.emit_message = jpeg_quiet;
    if (setjmp(err->jump)) {
        jpeg_destroy_decompress(&cinfo);
        return err->message;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(&cinfo, TRUE);
    const size_t w = cinfo.image_width, h = cinfo.image_height;
    if (w == 0 || h == 0 || w > 100000 || h > 100000 || w * h > max_pixels) {
        *too_big = true;
        out->width = static_cast<int>(w);
        out->height = static_cast<int>(h);
        jpeg_destroy_decompress(&cinfo);
        return "too big";
    }
#ifdef JCS_EXTENSIONS
    cinfo.out_color_space = JCS_EXT_BGR;  // libjpeg-turbo: BGR directly, as cv2.imread
#else
    cinfo.out_color_space = JCS_RGB;
#endif
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        jpeg_destroy_decompress(&cinfo);
        return "unsupported JPEG colour space";
    }
    out->height = static_cast<int>(cinfo.output_height);
    out->width = static_cast<int>(cinfo.output_width);
    out->data.resize(static_cast<size_t>(out->height) * out->width * 3);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out->data.data() + static_cast<size_t>(cinfo.output_scanline) * out->width * 3;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
#ifndef JCS_EXTENSIONS
    for (size_t i = 0; i + 2 < out->data.size(); i += 3) std::swap(out->data[i], out->data[i + 2]);
#endif
    return nullptr;
}

Image decode_jpeg(const uint8_t* data, size_t size, size_t max_pixels) {
    Image im;
    JpegErr err;
    err.message[0] = 0;
    bool too_big = false;
    const char* msg = decode_jpeg_raw(data, size, max_pixels, &im, &err, &too_big);
    if (too_big) check_pixels(im.width, im.height, max_pixels);
    if (msg) throw Error(std::string("corrupt JPEG image: ") + msg);
    return im;
}
#endif

#ifdef YOLACT_HAVE_PNG
struct PngSource {
    const uint8_t* data;
    size_t size;
    size_t pos;
};

void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
    PngSource* s = static_cast<PngSource*>(png_get_io_ptr(png));
    if (n > s->size - s->pos) png_error(png, "truncated PNG data");
    std::memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

void png_fail(png_structp png, png_const_charp msg) {
    char* buf = static_cast<char*>(png_get_error_ptr(png));
    std::snprintf(buf, 256, "%s", msg);
    png_longjmp(png, 1);
}
void png_quiet(png_structp, png_const_charp) {}

const char* decode_png_raw(const uint8_t* data, size_t size, size_t max_pixels, Image* out, char* msg,
                           bool* too_big) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, msg, png_fail, png_quiet);
    if (!png) return "out of memory";
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, nullptr, nullptr);
        return "out of memory";
    }
    PngSource src{data, size, 0};
    png_bytep* volatile rows = nullptr;  // volatile: assigned after setjmp
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, nullptr);
        delete[] rows;
        return "";  // the message is in the caller's buffer (png_fail wrote it)
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);
    const size_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (w == 0 || h == 0 || w > 100000 || h > 100000 || w * h > max_pixels) {
        *too_big = true;
        out->width = static_cast<int>(w);
        out->height = static_cast<int>(h);
        png_destroy_read_struct(&png, &info, nullptr);
        return "too big";
    }
    // Any PNG -> 8-bit BGR, alpha dropped, as cv2.imread(IMREAD_COLOR).
    png_set_strip_16(png);
    png_set_palette_to_rgb(png);
    png_set_expand_gray_1_2_4_to_8(png);
    png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    png_set_bgr(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != w * 3) {
        png_destroy_read_struct(&png, &info, nullptr);
        return "unsupported PNG layout";
    }
    out->height = static_cast<int>(h);
    out->width = static_cast<int>(w);
    out->data.resize(w * h * 3);
    rows = new png_bytep[h];
    for (size_t y = 0; y < h; ++y) rows[y] = out->data.data() + y * w * 3;
    png_read_image(png, rows);
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    delete[] rows;
    return nullptr;
}

Image decode_png(const uint8_t* data, size_t size, size_t max_pixels) {
    Image im;
    char msg[256] = {0};
    bool too_big = false;
    const char* err = decode_png_raw(data, size, max_pixels, &im, msg, &too_big);
    if (too_big) check_pixels(im.width, im.height, max_pixels);
    if (err) throw Error(std::string("corrupt PNG image: ") + (*err ? err : msg));
    return im;
}
#endif

}  // namespace

bool codec_has_jpeg() {
#ifdef YOLACT_HAVE_JPEG
    return true;
#else
    return false;
#endif
}

bool codec_has_png() {
#ifdef YOLACT_HAVE_PNG
    return true;
#else
    return false;
#endif
}

Image decode_image(const uint8_t* data, size_t size, size_t max_pixels) {
    if (data == nullptr || size < 8) throw Error("not an image: too few bytes");
    if (data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
#ifdef YOLACT_HAVE_JPEG
        return decode_jpeg(data, size, max_pixels);
#else
        throw Error("JPEG support was not built in (libjpeg not found at build time)");
#endif
    }
    if (std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) {
#ifdef YOLACT_HAVE_PNG
        return decode_png(data, size, max_pixels);
#else
        throw Error("PNG support was not built in (libpng not found at build time)");
#endif
    }
    if (data[0] == 'P' && (data[1] == '5' || data[1] == '6')) return decode_pnm(data, size, max_pixels);
    throw Error(std::string("not an image: unknown format (supported: ") + (codec_has_jpeg() ? "JPEG, " : "") +
                (codec_has_png() ? "PNG, " : "") + "binary PPM/PGM)");
}

Image read_image(const std::string& path, size_t max_pixels) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot read image " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    const std::string bytes = ss.str();
    try {
        return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), max_pixels);
    } catch (const Error& e) {
        throw Error(path + ": " + e.what());
    }
}

void write_image(const std::string& path, const ImageView& im) {
    if (im.empty()) throw Error("write_image: empty image");
    const bool png = path.size() > 4 && path.compare(path.size() - 4, 4, ".png") == 0;
#ifdef YOLACT_HAVE_PNG
    if (png) {
        FILE* fp = std::fopen(path.c_str(), "wb");
        if (!fp) throw Error("cannot write " + path);
        png_image img;
        std::memset(&img, 0, sizeof img);
        img.version = PNG_IMAGE_VERSION;
        img.width = static_cast<png_uint_32>(im.width);
        img.height = static_cast<png_uint_32>(im.height);
        img.format = PNG_FORMAT_BGR;
        const int ok = png_image_write_to_stdio(&img, fp, 0, im.data, static_cast<png_int_32>(im.row_bytes()), nullptr);
        const bool closed = std::fclose(fp) == 0;
        if (!ok || !closed) throw Error("cannot write PNG " + path);
        return;
    }
#else
    if (png) throw Error("PNG output was not built in (libpng not found); write .ppm instead");
#endif
    std::ofstream f(path, std::ios::binary);
    if (!f) throw Error("cannot write " + path);
    f << "P6\n" << im.width << " " << im.height << "\n255\n";
    std::vector<uint8_t> row(static_cast<size_t>(im.width) * 3);
    for (int y = 0; y < im.height; ++y) {
        const uint8_t* r = im.row(y);
        for (int x = 0; x < im.width; ++x) {
            row[x * 3] = r[x * 3 + 2];
            row[x * 3 + 1] = r[x * 3 + 1];
            row[x * 3 + 2] = r[x * 3];
        }
        f.write(reinterpret_cast<const char*>(row.data()), static_cast<std::streamsize>(row.size()));
    }
    if (!f) throw Error("cannot write " + path);
}

}  // namespace yolact
