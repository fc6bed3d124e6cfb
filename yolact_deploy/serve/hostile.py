"""Hostile images for the service's tests and load benchmark: real encoded files whose headers claim
a huge size ("decompression bombs": a decoder that trusted them would allocate gigabytes)."""
from __future__ import annotations

import base64
import json
import struct
import zlib

import cv2
import numpy as np


def encoded(ext: str, shape=(48, 64), params=None) -> bytes:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, image, [int(v) for kv in (params or {}).items() for v in kv])
    assert ok
    return buf.tobytes()


def jpeg_with_fill_bytes(data: bytes, n: int = 1) -> bytes:
    """0xFF fill bytes before the first marker after SOI (allowed by the JPEG standard)."""
    return data[:2] + b'\xff' * n + data[2:]


def patch_size(data: bytes, width: int, height: int) -> bytes:
    """The same file with a header that claims width x height."""
    b = bytearray(data)
    if b[:2] == b'\xff\xd8':
        i = 2
        while True:
            while b[i] == 0xFF:
                i += 1
            marker = b[i]
            if marker in (0xC0, 0xC1, 0xC2):
                b[i + 4:i + 8] = struct.pack('>HH', height, width)
                return bytes(b)
            i += 1 + struct.unpack('>H', b[i + 1:i + 3])[0]
    if b[:4] == b'\x89PNG':
        b[16:24] = struct.pack('>II', width, height)
        b[29:33] = struct.pack('>I', zlib.crc32(bytes(b[12:29])))
        return bytes(b)
    if b[:4] in (b'II*\x00', b'MM\x00*'):
        end = '<' if b[:2] == b'II' else '>'
        off = struct.unpack(end + 'I', b[4:8])[0]
        for k in range(struct.unpack(end + 'H', b[off:off + 2])[0]):
            e = off + 2 + 12 * k
            tag, typ = struct.unpack(end + 'HH', b[e:e + 4])
            if tag in (256, 257):
                value = width if tag == 256 else height
                b[e + 8:e + 12] = struct.pack(end + ('I' if typ == 4 else 'HH'),
                                              *((value,) if typ == 4 else (value, 0)))
        return bytes(b)
    if b[:4] == b'RIFF':
        chunk = bytes(b[12:16])
        if chunk == b'VP8 ':
            b[26:30] = struct.pack('<HH', width, height)
        elif chunk == b'VP8L':
            bits = struct.unpack('<I', b[21:25])[0] & ~((1 << 28) - 1)
            b[21:25] = struct.pack('<I', bits | (width - 1) | ((height - 1) << 14))
        return bytes(b)
    if b[:2] == b'BM':
        b[18:26] = struct.pack('<ii', width, height)
        return bytes(b)
    raise AssertionError('unknown format')


def bombs() -> dict:
    """name -> file; all are refused from their header by a service with default settings (the
    PNG is under the default pixel limit: the memory budget refuses it)."""
    webp = encoded('.webp', params={cv2.IMWRITE_WEBP_QUALITY: 101})
    return {
        'TIFF 20000x20000': patch_size(encoded('.tiff'), 20000, 20000),
        'JPEG 10000x10000 with a fill byte': patch_size(jpeg_with_fill_bytes(encoded('.jpg')),
                                                        10000, 10000),
        'WebP 16000x16000': patch_size(webp, 16000, 16000),
        'BMP 30000x30000': patch_size(encoded('.bmp'), 30000, 30000),
        'PNG 6000x6000': patch_size(encoded('.png'), 6000, 6000),
    }


def json_of_pngs(n: int = 16, size: int = 6000) -> bytes:
    """One JSON request holding ``n`` base64 PNGs that claim size x size each."""
    png = base64.b64encode(patch_size(encoded('.png'), size, size)).decode()
    return json.dumps({'images': [png] * n}).encode()
