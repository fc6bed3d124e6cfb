"""Image and video I/O for the tools and the service: BGR uint8 frames in, drawn frames out (OpenCV).
Bad input is one :class:`~yolact_deploy.errors.InputError` line; outputs are written atomically."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, List, Tuple, Union

import cv2
import numpy as np

from ..errors import InputError
from .imageheader import jpeg_truncated
from .fileio import atomic_output

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v')


def load_image(path: str) -> np.ndarray:
    """Reads an image as BGR uint8 ``[H, W, 3]`` (grayscale and alpha are converted)."""
    if not os.path.exists(path):
        raise InputError(f'image not found: {path}')
    if os.path.isdir(path):
        raise InputError(f'expected an image file, got a directory: {path}')
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as exc:
        raise InputError(f'cannot read image {path}: {exc.strerror}') from None
    if jpeg_truncated(data):  # decodable, but the lower part would be made-up grey
        raise InputError(f'truncated JPEG (no end-of-image marker after its last scan): {path}')
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f'cannot decode image (not an image or corrupt): {path}')
    return image


def list_images(folder: str) -> List[str]:
    """The image files of a folder (by extension), sorted."""
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(IMAGE_EXTENSIONS))


def save_image(path: str, image: np.ndarray) -> None:
    with atomic_output(path) as tmp:
        if not cv2.imwrite(tmp, image):
            raise InputError(f'cannot write image {path}')


def read_video(source: Union[str, int]) -> Tuple[Iterator[np.ndarray], float, int]:
    """(frames, fps, frame count or 0) of a video file or a webcam index."""
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise InputError(f'cannot open video source {source}')
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def frames():
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame
        finally:
            cap.release()
    return frames(), fps, total


@contextlib.contextmanager
def video_writer(path: str, fps: float):
    """Yields ``write(frame)``; the .mp4 appears at ``path`` only if the block succeeds and at least
    one frame was written."""
    state = {'writer': None}
    with atomic_output(path, suffix='.mp4') as tmp:
        def write(frame: np.ndarray) -> None:
            if state['writer'] is None:
                h, w = frame.shape[:2]
                state['writer'] = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
            state['writer'].write(frame)
        try:
            yield write
        finally:
            if state['writer'] is not None:
                state['writer'].release()
