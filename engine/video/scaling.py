"""The one scaler every model frame goes through: swscale (bilinear) straight to the model's
input size, then rotated upright. Video frames (decode.py) and still images (image.py) share
it, so a picture gives the same frame and the same scores whichever way it arrives.
Knows nothing about Ray, models or HTTP.
"""

from __future__ import annotations

from typing import Protocol

import av
import numpy as np
from av.video.reformatter import Interpolation

from engine.video.hwdecode import software_frame

SWSCALE_FLAGS = Interpolation.BILINEAR
"""swscale's fast bilinear path: what CPU nodes scale with. Its rounding is biased by 1-1.5
levels against an exact conversion; the exact flags below cost about 0.35 ms more per 1080p
frame and some 200 MiB more peak memory in a worker decoding very large frames (measured by
tests/integration/test_hostile_jobs.py), so the product keeps the fast path."""

EXACT_SWSCALE_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
"""Bilinear with exact rounding and full-resolution chroma: the reference the GPU kernel path
(engine/video/device_scaling.py) is tested against, to within a level."""


class FrameScaler(Protocol):
    """What the decode loop needs of a scaler: one frame converted, a segment's picks stacked.
    `UprightScaler` (swscale) and `device_scaling.KernelScaler` (the YUV kernel) are the two."""

    def convert(self, frame: av.VideoFrame): ...

    def stack(self, arrays: list) -> np.ndarray: ...


class UprightScaler:
    """Scales a decoded frame to (height, width) RGB with swscale, then rotates it upright.

    For 90/270 degree rotation the coded picture is scaled to the swapped size first, so the
    rotated result has exactly the requested (height, width).
    """

    def __init__(self, output_size: tuple[int, int], rotation_degrees: int,
                 interpolation: Interpolation = SWSCALE_FLAGS) -> None:
        self._height, self._width = output_size
        self._interpolation = interpolation
        self._quarter_turns = (rotation_degrees // 90) % 4
        self._reformatter = av.video.reformatter.VideoReformatter()

    def convert(self, frame: av.VideoFrame) -> np.ndarray:
        if self._quarter_turns % 2:
            coded_width, coded_height = self._height, self._width
        else:
            coded_width, coded_height = self._width, self._height
        scaled = self._reformatter.reformat(
            software_frame(frame),
            width=coded_width,
            height=coded_height,
            format="rgb24",
            interpolation=self._interpolation,
        )
        array = scaled.to_ndarray()
        if self._quarter_turns:
            # np.rot90 turns counter-clockwise, the display-matrix convention of the probe.
            array = np.rot90(array, k=self._quarter_turns)
        return np.ascontiguousarray(array)

    def stack(self, arrays: list[np.ndarray]) -> np.ndarray:
        """(N, height, width, 3) uint8: one segment's picks, as the decode loop returns them."""
        if not arrays:
            return np.empty((0, self._height, self._width, 3), np.uint8)
        return np.stack(arrays)
