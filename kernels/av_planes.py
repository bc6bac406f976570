"""PyAV frames -> plane tensors for `kernels.yuv.yuv_to_model_input`, without conversion.

Decoders hand out 4:2:0 frames whose rows are padded to a `line_size`; wrapping those
buffers as strided torch views (no copy, no swscale) is what lets the colour conversion
and resize happen later in one pass, on the GPU when there is one. This module knows
PyAV and torch, nothing of the engine.

Colour tags: FFmpeg's colorspace/color_range values on the frame choose the matrix and
range; untagged frames follow the usual player convention (BT.709 from 720 rows up, else
BT.601; limited range), and yuvj420p is full range by definition.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import av
import torch

from kernels.yuv_params import YuvInputError

_AVCOL_SPC_BT709 = 1
_AVCOL_SPC_BT601 = (5, 6)  # BT470BG, SMPTE170M
_AVCOL_RANGE_JPEG = 2
_PLANE_FORMATS = {"yuv420p": "yuv420p", "yuvj420p": "yuv420p", "nv12": "nv12"}
HD_MIN_ROWS = 720


@dataclass(frozen=True)
class YuvPlanes:
    """Plane tensors plus the tags needed to interpret them; feed to yuv_to_model_input.

    planes are uint8 (N, rows, cols[, 2]) tensors; for one frame N = 1 and they are views
    of the frame's own buffers (strides = line sizes), which keep the frame alive.
    """

    fmt: str
    planes: tuple[torch.Tensor, ...]
    matrix: str
    colour_range: str

    @property
    def height(self) -> int:
        return int(self.planes[0].shape[-2])

    @property
    def width(self) -> int:
        return int(self.planes[0].shape[-1])


def colour_tags(frame: av.VideoFrame) -> tuple[str, str]:
    """(matrix, colour_range) for a frame, from its tags or the untagged convention."""
    space = int(frame.colorspace)
    if space == _AVCOL_SPC_BT709:
        matrix = "bt709"
    elif space in _AVCOL_SPC_BT601:
        matrix = "bt601"
    else:  # unspecified or exotic (BT.2020, SMPTE 240M): nearest common choice
        matrix = "bt709" if frame.height >= HD_MIN_ROWS else "bt601"
    full = int(frame.color_range) == _AVCOL_RANGE_JPEG or frame.format.name == "yuvj420p"
    return matrix, "full" if full else "limited"


def planes_from_av_frame(frame: av.VideoFrame) -> YuvPlanes:
    """Zero-copy (1, rows, cols) views of a yuv420p / yuvj420p / nv12 frame's planes."""
    fmt = _PLANE_FORMATS.get(frame.format.name)
    if fmt is None:
        raise YuvInputError(
            f"frame format {frame.format.name!r} is not supported; use one of {sorted(_PLANE_FORMATS)} "
            "(reformat other formats, or decode hardware frames to nv12)"
        )
    chroma_h, chroma_w = (frame.height + 1) // 2, (frame.width + 1) // 2
    y = _plane_view(frame, 0, frame.height, frame.width)
    if fmt == "nv12":
        uv = _plane_view(frame, 1, chroma_h, 2 * chroma_w).unflatten(-1, (chroma_w, 2))
        planes: tuple[torch.Tensor, ...] = (y, uv)
    else:
        planes = (
            y,
            _plane_view(frame, 1, chroma_h, chroma_w),
            _plane_view(frame, 2, chroma_h, chroma_w),
        )
    matrix, colour_range = colour_tags(frame)
    return YuvPlanes(fmt=fmt, planes=planes, matrix=matrix, colour_range=colour_range)


def stack_planes(frames: Sequence[YuvPlanes]) -> YuvPlanes:
    """One batch (contiguous copies) from same-size, same-format, same-tag frames.

    A batch must share one format, size and colour interpretation because the kernel takes
    one set of each per launch; mixing them is a caller bug, reported with the culprit.
    """
    if not frames:
        raise YuvInputError("cannot stack an empty list of frames")
    first = frames[0]
    key = (first.fmt, first.height, first.width, first.matrix, first.colour_range)
    for index, item in enumerate(frames):
        other = (item.fmt, item.height, item.width, item.matrix, item.colour_range)
        if other != key:
            raise YuvInputError(
                f"frame {index} is {other}, but frame 0 is {key}; batch like with like"
            )
    planes = tuple(
        torch.cat([item.planes[i] for item in frames], dim=0).contiguous()
        for i in range(len(first.planes))
    )
    return YuvPlanes(
        fmt=first.fmt, planes=planes, matrix=first.matrix, colour_range=first.colour_range
    )


def _plane_view(frame: av.VideoFrame, index: int, rows: int, row_bytes: int) -> torch.Tensor:
    """(1, rows, row_bytes) view of plane `index`, row stride = its line_size."""
    plane = frame.planes[index]
    line_size = plane.line_size
    if line_size < row_bytes or plane.buffer_size < (rows - 1) * line_size + row_bytes:
        raise YuvInputError(
            f"plane {index} ({plane.buffer_size} bytes, line_size {line_size}) is too small "
            f"for {rows} rows of {row_bytes} bytes"
        )
    with warnings.catch_warnings():
        # PyAV exposes frame buffers read-only to the buffer protocol; we never write them.
        warnings.simplefilter("ignore", UserWarning)
        flat = torch.frombuffer(plane, dtype=torch.uint8, count=plane.buffer_size)
    return flat.as_strided((1, rows, row_bytes), (rows * line_size, line_size, 1))
