"""Request bodies -> decoded BGR images and options, with a clear 4xx for every bad input.

Accepted bodies of ``POST /v1/detect``:
- ``image/jpeg``, ``image/png``, ``image/*``, ``application/octet-stream``: the image file itself;
- ``multipart/form-data``: one or more file parts (any field name), plus optional text fields
  ``score_threshold``, ``top_k``, ``masks``;
- ``application/json``: ``{"image": "<base64>"}`` or ``{"images": ["<base64>", ...]}`` (data URLs are
  accepted), plus optional ``score_threshold``, ``top_k``, ``masks``.
Query parameters ``score_threshold``, ``top_k``, ``masks`` override the body's.
"""
from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import List, Optional
from urllib.parse import parse_qs

import cv2
import numpy as np


class RequestError(Exception):
    """A bad request: HTTP status + one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class DetectRequest:
    images: List[np.ndarray] = field(default_factory=list)
    score_threshold: Optional[float] = None
    top_k: Optional[int] = None
    top_k_given: bool = False
    masks: bool = True


IMAGE_TYPES = ('image/', 'application/octet-stream')


def image_size_from_header(data: bytes):
    """(width, height) from a PNG IHDR or a JPEG SOF marker without decoding; None if unknown."""
    if data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) >= 24:
        return struct.unpack('>II', data[16:24])
    if data[:2] == b'\xff\xd8':
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
                i += 2
                continue
            length = struct.unpack('>H', data[i + 2:i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                h, w = struct.unpack('>HH', data[i + 5:i + 9])
                return w, h
            i += 2 + length
    return None


def decode_image(data: bytes, max_pixels: int, what: str = 'image') -> np.ndarray:
    if not data:
        raise RequestError(400, f'{what} is empty')
    size = image_size_from_header(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise RequestError(413, f'{what} of {size[0]}x{size[1]} pixels exceeds the limit of '
                                f'{max_pixels} pixels')
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise RequestError(400, f'{what} is not an image (or is corrupt): supported are JPEG, PNG, '
                                'BMP, TIFF, WebP')
    if image.shape[0] * image.shape[1] > max_pixels:
        raise RequestError(413, f'{what} of {image.shape[1]}x{image.shape[0]} pixels exceeds the '
                                f'limit of {max_pixels} pixels')
    return image


def _b64(value, what: str) -> bytes:
    if not isinstance(value, str):
        raise RequestError(400, f'{what} must be a base64 string')
    if value.startswith('data:'):
        head, _, value = value.partition(',')
        if ';base64' not in head:
            raise RequestError(400, f'{what}: only base64 data URLs are supported')
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f'{what} is not valid base64') from None


def _parse_bool(value, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('1', 'true', 'yes'):
        return True
    if text in ('0', 'false', 'no'):
        return False
    raise RequestError(400, f'{what} must be true/false or 1/0, got {value!r}')


def _apply_options(req: DetectRequest, options: dict, source: str) -> None:
    if 'score_threshold' in options:
        value = options['score_threshold']
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise RequestError(400, f'score_threshold ({source}) must be a number, got {value!r}') \
                from None
        if not 0.0 <= value <= 1.0:
            raise RequestError(400, f'score_threshold ({source}) must be in [0, 1], got {value}')
        req.score_threshold = value
    if 'top_k' in options:
        value = options['top_k']
        if isinstance(value, bool) or not (isinstance(value, int) or
                                           (isinstance(value, str) and value.strip().isdigit())):
            raise RequestError(400, f'top_k ({source}) must be an integer >= 0, got {value!r}')
        req.top_k = int(value)
        req.top_k_given = True
    if 'masks' in options:
        req.masks = _parse_bool(options['masks'], f'masks ({source})')


def _parse_json(body: bytes, max_images: int, max_pixels: int, req: DetectRequest) -> None:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f'malformed JSON: {exc}') from None
    if not isinstance(doc, dict):
        raise RequestError(400, 'the JSON body must be an object with "image" or "images"')
    unknown = set(doc) - {'image', 'images', 'score_threshold', 'top_k', 'masks'}
    if unknown:
        raise RequestError(400, f'unknown JSON fields: {", ".join(sorted(unknown))}')
    if ('image' in doc) == ('images' in doc):
        raise RequestError(400, 'give exactly one of "image" (base64) or "images" (list of base64)')
    encoded = [doc['image']] if 'image' in doc else doc['images']
    if not isinstance(encoded, list) or not encoded:
        raise RequestError(400, '"images" must be a non-empty list of base64 strings')
    if len(encoded) > max_images:
        raise RequestError(413, f'{len(encoded)} images in one request; the limit is {max_images}')
    _apply_options(req, doc, 'JSON')
    for i, value in enumerate(encoded):
        what = 'image' if 'image' in doc else f'images[{i}]'
        req.images.append(decode_image(_b64(value, what), max_pixels, what))


def _parse_multipart(body: bytes, content_type: str, max_images: int, max_pixels: int,
                     req: DetectRequest) -> None:
    if 'boundary=' not in content_type:
        raise RequestError(400, 'multipart/form-data without a boundary')
    msg = BytesParser(policy=HTTP).parsebytes(
        b'Content-Type: ' + content_type.encode('latin-1') + b'\r\n\r\n' + body)
    if not msg.is_multipart():
        raise RequestError(400, 'malformed multipart body')
    options, files = {}, []
    for part in msg.iter_parts():
        name = part.get_param('name', header='content-disposition')
        filename = part.get_filename()
        payload = part.get_payload(decode=True) or b''
        ctype = part.get_content_type()
        if filename is not None or ctype.startswith(IMAGE_TYPES):
            files.append((filename or name or f'part{len(files)}', payload))
        elif name in ('score_threshold', 'top_k', 'masks'):
            options[name] = payload.decode('utf-8', 'replace').strip()
        elif name is not None:
            raise RequestError(400, f'unknown form field {name!r}')
    if not files:
        raise RequestError(400, 'the multipart body has no file part')
    if len(files) > max_images:
        raise RequestError(413, f'{len(files)} images in one request; the limit is {max_images}')
    _apply_options(req, options, 'form')
    for name, payload in files:
        req.images.append(decode_image(payload, max_pixels, f'upload {name!r}'))


def parse_detect_request(body: bytes, content_type: Optional[str], query: str, *,
                         max_images: int, max_pixels: int) -> DetectRequest:
    req = DetectRequest()
    ctype = (content_type or '').strip()
    base = ctype.split(';')[0].strip().lower()
    if not base:
        raise RequestError(415, 'missing Content-Type: send image/jpeg, image/png, '
                                'multipart/form-data or application/json')
    if base == 'application/json':
        _parse_json(body, max_images, max_pixels, req)
    elif base == 'multipart/form-data':
        _parse_multipart(body, ctype, max_images, max_pixels, req)
    elif base.startswith(IMAGE_TYPES):
        req.images.append(decode_image(body, max_pixels, 'the upload'))
    else:
        raise RequestError(415, f'unsupported Content-Type {base!r}: send image/jpeg, image/png, '
                                'multipart/form-data or application/json')
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        raise RequestError(400, 'malformed query string') from None
    unknown = set(params) - {'score_threshold', 'top_k', 'masks'}
    if unknown:
        raise RequestError(400, f'unknown query parameters: {", ".join(sorted(unknown))}')
    _apply_options(req, {k: v[-1] for k, v in params.items()}, 'query')
    return req
