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
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import List, Optional
from urllib.parse import parse_qs

import cv2
import numpy as np

from .budget import image_cost
from .errors import RequestError
from ..deploy.imageheader import HeaderError, image_size, jpeg_truncated, read_header


@dataclass
class DetectRequest:
    images: List[np.ndarray] = field(default_factory=list)
    score_threshold: Optional[float] = None
    top_k: Optional[int] = None
    top_k_given: bool = False
    masks: bool = True


IMAGE_TYPES = ('image/', 'application/octet-stream')


def image_size_from_header(data: bytes):
    """(width, height) from the header without decoding; None if unknown."""
    return image_size(data)


class _Unbounded:
    """No memory accounting (direct callers of :func:`decode_image`)."""

    def charge(self, n: int, what: str) -> None:
        pass


def check_image(data: bytes, max_pixels: int, what: str, budget=None, detections: int = 0):
    """From the header alone: the format, the pixel limit, and the memory the image will cost
    (charged to ``budget``: 413/503 before any pixel is allocated). Returns the header."""
    if not data:
        raise RequestError(400, f'{what} is empty')
    try:
        header = read_header(data)
    except HeaderError as exc:
        raise RequestError(400, f'{what} is not an image (or is corrupt): {exc}') from None
    if header.pixels > max_pixels:
        raise RequestError(413, f'{what} of {header.width}x{header.height} pixels exceeds the limit '
                                f'of {max_pixels} pixels')
    (budget or _Unbounded()).charge(
        image_cost(header.pixels, header.source_bytes_per_pixel, detections),
        f'{what} ({header.width}x{header.height})')
    return header


def decode_checked(data: bytes, header, what: str) -> np.ndarray:
    if jpeg_truncated(data):
        raise RequestError(400, f'{what} is not an image (or is corrupt): a truncated JPEG')
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise RequestError(400, f'{what} is not an image (or is corrupt): supported are JPEG, PNG, '
                                'BMP, TIFF, WebP')
    if image.shape[0] * image.shape[1] > header.pixels:  # the header lied: never trust it twice
        raise RequestError(400, f'{what} decodes to more pixels than its header says')
    return image


def decode_image(data: bytes, max_pixels: int, what: str = 'image', budget=None,
                 detections: int = 0) -> np.ndarray:
    """:func:`check_image`, then decode."""
    return decode_checked(data, check_image(data, max_pixels, what, budget, detections), what)


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


def _parse_json(body: bytes, max_images: int, req: DetectRequest) -> list:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f'malformed JSON: {exc}') from None
    except RecursionError:  # deeply nested brackets: the parser's stack, not ours, gave up
        raise RequestError(400, 'malformed JSON: nested too deeply') from None
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
    out = []
    for i, value in enumerate(encoded):
        what = 'image' if 'image' in doc else f'images[{i}]'
        out.append((what, _b64(value, what)))
    return out


def _parse_multipart(body: bytes, content_type: str, max_images: int, req: DetectRequest) -> list:
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
            files.append((f'upload {filename or name or f"part{len(files)}"!r}', payload))
        elif name in ('score_threshold', 'top_k', 'masks'):
            options[name] = payload.decode('utf-8', 'replace').strip()
        elif name is not None:
            raise RequestError(400, f'unknown form field {name!r}')
    if not files:
        raise RequestError(400, 'the multipart body has no file part')
    if len(files) > max_images:
        raise RequestError(413, f'{len(files)} images in one request; the limit is {max_images}')
    _apply_options(req, options, 'form')
    return files


def parse_detect_request(body: bytes, content_type: Optional[str], query: str, *,
                         max_images: int, max_pixels: int, budget=None,
                         default_top_k: Optional[int] = None,
                         max_detections: int = 100) -> DetectRequest:
    """Parses options and images; every image is charged to ``budget`` (see budget.py) with the
    masks it may produce (the effective top_k, at most ``max_detections``) before it is decoded."""
    req = DetectRequest()
    ctype = (content_type or '').strip()
    base = ctype.split(';')[0].strip().lower()
    if not base:
        raise RequestError(415, 'missing Content-Type: send image/jpeg, image/png, '
                                'multipart/form-data or application/json')
    try:
        if base == 'application/json':
            encoded = _parse_json(body, max_images, req)
        elif base == 'multipart/form-data':
            encoded = _parse_multipart(body, ctype, max_images, req)
        elif base.startswith(IMAGE_TYPES):
            encoded = [('the upload', body)]
        else:
            raise RequestError(415, f'unsupported Content-Type {base!r}: send image/jpeg, '
                                    'image/png, multipart/form-data or application/json')
    except RecursionError:
        raise RequestError(400, 'malformed body: nested too deeply') from None
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        raise RequestError(400, 'malformed query string') from None
    unknown = set(params) - {'score_threshold', 'top_k', 'masks'}
    if unknown:
        raise RequestError(400, f'unknown query parameters: {", ".join(sorted(unknown))}')
    _apply_options(req, {k: v[-1] for k, v in params.items()}, 'query')
    top_k = req.top_k if req.top_k_given else default_top_k
    detections = max_detections if top_k is None else min(top_k, max_detections)
    # Every image of the request is checked and charged before the first one is decoded.
    headers = [check_image(data, max_pixels, what, budget, detections) for what, data in encoded]
    for (what, data), header in zip(encoded, headers):
        req.images.append(decode_checked(data, header, what))
    return req
