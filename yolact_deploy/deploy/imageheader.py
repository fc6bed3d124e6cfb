"""Image format and true pixel size from the file header, before anything is decoded.

The service accepts exactly the formats read here (JPEG, PNG, TIFF, WebP, BMP): for each, the size
the decoder will allocate is known from a few header bytes, so a small file that decodes to gigabytes
(a "decompression bomb") is refused before it costs memory. Anything else -- formats OpenCV could
decode but we cannot bound (PPM, EXR, JPEG 2000, HDR, GIF ...) and headers we cannot parse -- is
refused too.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

FORMATS = ('JPEG', 'PNG', 'TIFF', 'WebP', 'BMP')


class HeaderError(ValueError):
    """The header cannot be read, or its size cannot be bounded (one-line message)."""


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int
    source_bytes_per_pixel: float  # what the decoder holds per pixel before converting to 8-bit BGR

    @property
    def pixels(self) -> int:
        return self.width * self.height


# SOF markers (baseline, extended, progressive, lossless, arithmetic); C4 (DHT), C8 (JPG), CC (DAC)
# are not frames.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> ImageHeader:
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            raise HeaderError('corrupt JPEG header (no marker where one must be)')
        while i < n and data[i] == 0xFF:  # any number of 0xFF fill bytes may precede a marker
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # TEM, RSTn, SOI: no length
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan before any frame header
            raise HeaderError('JPEG without a frame header before its image data')
        if i + 2 > n:
            break
        length = struct.unpack('>H', data[i:i + 2])[0]
        if length < 2:
            raise HeaderError('corrupt JPEG header (segment length < 2)')
        if marker in _SOF:
            if i + 8 > n:
                break
            height, width, components = struct.unpack('>HHB', data[i + 3:i + 8])
            if height == 0 or width == 0:  # height 0 = "defined later by DNL": cannot bound
                raise HeaderError('JPEG frame header without a height/width')
            # progressive/multi-scan decoding keeps 16-bit DCT coefficients of the whole image
            return ImageHeader('JPEG', width, height, 2.0 * max(components, 1))
        i += length
    raise HeaderError('truncated JPEG header')


def _png(data: bytes) -> ImageHeader:
    if len(data) < 29 or data[12:16] != b'IHDR':
        raise HeaderError('corrupt PNG header (no IHDR)')
    width, height, depth, color = struct.unpack('>IIBB', data[16:26])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color)
    if channels is None or depth not in (1, 2, 4, 8, 16) or not width or not height:
        raise HeaderError('corrupt PNG header')
    return ImageHeader('PNG', width, height, channels * max(depth, 8) / 8)


def _tiff(data: bytes) -> ImageHeader:
    if len(data) < 8:
        raise HeaderError('truncated TIFF header')
    end = '<' if data[:2] == b'II' else '>'
    (offset,) = struct.unpack(end + 'I', data[4:8])
    if offset + 2 > len(data):
        raise HeaderError('truncated TIFF header (first directory past the end)')
    (count,) = struct.unpack(end + 'H', data[offset:offset + 2])
    if offset + 2 + 12 * count > len(data):
        raise HeaderError('truncated TIFF header')
    tags = {}
    for k in range(count):
        entry = data[offset + 2 + 12 * k: offset + 14 + 12 * k]
        tag, typ, n = struct.unpack(end + 'HHI', entry[:8])
        if tag not in (256, 257, 258, 277):
            continue
        if typ == 3:  # SHORT: inline when it fits, else at the offset (BitsPerSample per channel)
            where = entry[8:10] if n <= 2 else None
            if where is None:
                (at,) = struct.unpack(end + 'I', entry[8:12])
                where = data[at:at + 2]
            if len(where) < 2:
                raise HeaderError('truncated TIFF header')
            tags[tag] = struct.unpack(end + 'H', where)[0]
        elif typ == 4 and n == 1:  # LONG
            tags[tag] = struct.unpack(end + 'I', entry[8:12])[0]
        else:
            raise HeaderError(f'TIFF tag {tag} has an unsupported type')
    width, height = tags.get(256, 0), tags.get(257, 0)
    if not width or not height:
        raise HeaderError('TIFF without an image width/length')
    bits, samples = tags.get(258, 1), tags.get(277, 1)
    if samples > 8 or bits > 64:
        raise HeaderError(f'TIFF with {samples} samples of {bits} bits per pixel is not accepted')
    # OpenCV reads TIFFs through 4-channel buffers of up to 16 bits (floats: their own size)
    return ImageHeader('TIFF', width, height, max(samples, 4) * max(bits, 16) / 8)


def _webp(data: bytes) -> ImageHeader:
    chunk = data[12:16]
    if chunk == b'VP8 ' and len(data) >= 30:
        if data[23:26] != b'\x9d\x01\x2a':
            raise HeaderError('corrupt WebP header (VP8 start code)')
        w, h = struct.unpack('<HH', data[26:30])
        width, height = w & 0x3FFF, h & 0x3FFF
    elif chunk == b'VP8L' and len(data) >= 25:
        if data[20] != 0x2F:
            raise HeaderError('corrupt WebP header (VP8L signature)')
        (bits,) = struct.unpack('<I', data[21:25])
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b'VP8X' and len(data) >= 30:
        width = int.from_bytes(data[24:27], 'little') + 1
        height = int.from_bytes(data[27:30], 'little') + 1
    else:
        raise HeaderError('corrupt or truncated WebP header')
    if not width or not height:
        raise HeaderError('WebP without a width/height')
    return ImageHeader('WebP', width, height, 4.0)


def _bmp(data: bytes) -> ImageHeader:
    if len(data) < 26:
        raise HeaderError('truncated BMP header')
    (size,) = struct.unpack('<I', data[14:18])
    if size == 12:  # BITMAPCOREHEADER
        width, height = struct.unpack('<HH', data[18:22])
    elif size >= 40 and len(data) >= 30:
        width, height = struct.unpack('<ii', data[18:26])
        width, height = abs(width), abs(height)  # negative height: rows stored top-down
    else:
        raise HeaderError('corrupt BMP header')
    if not width or not height:
        raise HeaderError('BMP without a width/height')
    return ImageHeader('BMP', width, height, 4.0)


def read_header(data: bytes) -> ImageHeader:
    """The format and size of an encoded image; :class:`HeaderError` when it is not one of
    :data:`FORMATS` or its header is unreadable."""
    if data[:3] == b'\xff\xd8\xff':
        return _jpeg(data)
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        return _png(data)
    if data[:4] in (b'II*\x00', b'MM\x00*'):
        return _tiff(data)
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return _webp(data)
    if data[:2] == b'BM':
        return _bmp(data)
    raise HeaderError('not one of the accepted formats JPEG, PNG, TIFF, WebP, BMP')


def image_size(data: bytes) -> Optional[tuple]:
    """(width, height) from the header, None when unknown (kept for callers of the old helper)."""
    try:
        h = read_header(data)
    except HeaderError:
        return None
    return h.width, h.height


def jpeg_truncated(data: bytes) -> bool:
    """True for a JPEG whose last scan has no end-of-image marker after it: a file cut short, which
    libjpeg decodes anyway (grey below the cut) with only a warning. Bytes after EOI are allowed;
    inside scan data 0xFF is always followed by 0x00 or a restart marker, so FFD9 is the real EOI."""
    if data[:3] != b'\xff\xd8\xff':
        return False
    return data.rfind(b'\xff\xd9') < data.rfind(b'\xff\xda')
