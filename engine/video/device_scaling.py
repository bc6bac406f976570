"""The kernel scaler: decoded frames -> upright model-sized RGB with the kernels package, on the
device that holds the frames, so NVDEC frames never leave the GPU at full size.

It is the drop-in twin of `UprightScaler` (engine/video/scaling.py) for the decode loop:
`convert` takes a PyAV frame (a CUDA frame kept on the device, or a software frame) and returns
a (height, width, 3) uint8 tensor; `stack` downloads a segment's picks in one copy. Frames are
read as the swscale path reads them (the frame's colour tags, swscale's BT.601 when untagged,
and a bilinear filter widened when shrinking), so both paths feed the model the same pictures
to within a level or so (tests/unit/test_video_device_scaling.py measures it). Formats the
kernel does not read (4:2:2, 4:4:4, odd-sized CUDA frames) go through the swscale scaler.
Knows nothing about Ray or models.
"""

from __future__ import annotations

import av
import numpy as np
import torch

from engine.video.scaling import UprightScaler
from kernels.av_planes import planes_from_av_frame, supported_format
from kernels.yuv import yuv_to_model_input

_REPACKED_FORMATS = {"yuv420p10le": "p010le"}
"""Software formats repacked (losslessly, by swscale) into one the kernel reads: a 10-bit
software decode gives planar 10-bit, NVDEC gives P010."""


class KernelScaler:
    """Scales decoded frames to (height, width) RGB with the YUV kernel, then rotates them
    upright; software frames are moved to `device` first ("cuda" or "cpu")."""

    def __init__(self, output_size: tuple[int, int], rotation_degrees: int, device: str) -> None:
        self._height, self._width = output_size
        self._quarter_turns = (rotation_degrees // 90) % 4
        self._device = torch.device(device)
        self._fallback = UprightScaler(output_size, rotation_degrees)

    def convert(self, frame: av.VideoFrame) -> torch.Tensor:
        repacked = _REPACKED_FORMATS.get(frame.format.name)
        if repacked is not None:
            frame = frame.reformat(format=repacked)
        if not supported_format(frame):
            return torch.from_numpy(self._fallback.convert(frame)).to(self._device)
        planes = planes_from_av_frame(frame, convention="swscale")
        if self._quarter_turns % 2:
            coded_size = (self._width, self._height)
        else:
            coded_size = (self._height, self._width)
        tensors = tuple(plane.to(self._device) for plane in planes.planes)
        picture = yuv_to_model_input(
            tensors, planes.fmt, planes.matrix, planes.colour_range, coded_size, antialias=True
        )[0]
        if self._quarter_turns:
            # Counter-clockwise, as np.rot90 in UprightScaler (the probe's display convention).
            picture = torch.rot90(picture, k=self._quarter_turns, dims=(0, 1))
        return picture

    def stack(self, pictures: list[torch.Tensor]) -> np.ndarray:
        """(N, height, width, 3) uint8 on the host: one download for the whole segment."""
        if not pictures:
            return np.empty((0, self._height, self._width, 3), np.uint8)
        return torch.stack([p.to(self._device) for p in pictures]).cpu().contiguous().numpy()
