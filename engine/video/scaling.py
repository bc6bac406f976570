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

SWSCALE_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
"""Bilinear with exact rounding and full-resolution chroma: about 0.3 ms more per 1080p frame
than the fast path, whose rounding is biased by 1-1.5 levels; with these flags the GPU kernel
path (engine/video/device_scaling.py) gives the same pictures to within a level."""


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

    def __init__(self, output_size: tuple[int, int], rotation_degrees: int) -> None:
        self._height, self._width = output_size
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
            interpolation=SWSCALE_FLAGS,
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
