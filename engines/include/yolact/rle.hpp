// COCO run-length encoding, byte for byte as pycocotools (mask.encode + the compressed string form).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "yolact/postprocess.hpp"
#include "yolact/types.hpp"

namespace yolact {

// Uncompressed COCO RLE: run lengths over the column-major (Fortran) pixel order, starting with a
// run of zeros (possibly empty).
// Only the bounding box of the set pixels is walked column by column (finding it is a row-major scan).
std::vector<uint32_t> rle_counts(const uint8_t* mask, int height, int width);
std::vector<uint32_t> rle_counts(const Mask& mask);
// The same counts from a box-cropped mask alone, without making the full mask.
std::vector<uint32_t> rle_counts(const MaskCrop& mask);
// The same for a [box_h, box_w] row-major bitmap at (top, left) of an otherwise empty
// [height, width] mask.
std::vector<uint32_t> rle_counts_box(const uint8_t* box, int top, int left, int box_h, int box_w,
                                     int height, int width);

// The compressed "counts" string of pycocotools (rleToString): 5-bit groups, ASCII offset 48,
// counts after the second one stored as differences to the count two places before.
std::string rle_to_string(const std::vector<uint32_t>& counts);

// Inverse of rle_to_string. Throws Error on a malformed string.
std::vector<uint32_t> rle_from_string(const std::string& text);

// Decodes counts to a row-major mask; throws Error when the counts do not add up to height*width.
Mask rle_decode(const std::vector<uint32_t>& counts, int height, int width);

// {"size": [h, w], "counts": "..."} as pycocotools returns it (counts compressed).
struct CocoRle {
    int height = 0;
    int width = 0;
    std::string counts;
};
CocoRle encode_coco_rle(const Mask& mask);
CocoRle encode_coco_rle(const MaskCrop& mask);

}  // namespace yolact
