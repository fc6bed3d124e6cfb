// Image files for the tools and the C++ service: JPEG (libjpeg), PNG (libpng) when the library was
// built with them, and binary PPM/PGM always. Not needed to embed the runtime (it takes BGR buffers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "yolact/types.hpp"

namespace yolact {

// Thrown when the header announces more pixels than allowed (a service answers 413, not 400).
class ImageTooLarge : public Error {
public:
    using Error::Error;
};

bool codec_has_jpeg();
bool codec_has_png();

// Decodes an encoded image into BGR. Throws Error for unknown/corrupt data or an image with more than
// `max_pixels` pixels (ImageTooLarge, checked from the header before decoding).
Image decode_image(const uint8_t* data, size_t size, size_t max_pixels = size_t(1) << 28);
Image read_image(const std::string& path, size_t max_pixels = size_t(1) << 28);

// Writes PNG when built with libpng and the name ends in .png; binary PPM otherwise (.ppm).
void write_image(const std::string& path, const ImageView& image);

}  // namespace yolact
