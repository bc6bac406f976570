"""PyAV frames -> plane tensors for `kernels.yuv.yuv_to_model_input`, without conversion.

Decoders hand out 4:2:0 frames whose rows are padded to a `line_size`; wrapping those
buffers as strided torch views (no copy, no swscale) is what lets the colour conversion
and resize happen later in one pass, on the GPU when there is one. This module knows
PyAV and torch, nothing of the engine.

Colour tags: FFmpeg's colorspace/color_range values on the frame choose the matrix and
range; untagged frames follow the usual player convention (BT.709 from 720 rows up, else
BT.601; limited range), or swscale's (BT.601 at every size) where frames must match what
swscale makes of them; yuvj420p is full range by definition.

NVDEC frames kept on the GPU (PyAV `HWAccel(..., is_hw_owned=True)`, format "cuda") export
their NV12 or P010 planes through DLPack as CUDA tensors: the same YuvPlanes, on the device.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import av
import torch
from torch.utils.dlpack import from_dlpack

from kernels.yuv_params import YuvInputError

_AVCOL_SPC_BT709 = 1
_AVCOL_SPC_BT601 = (5, 6)  # BT470BG, SMPTE170M
_AVCOL_SPC_BT2020 = (9, 10)  # BT2020 non-constant and constant luminance
_AVCOL_RANGE_JPEG = 2
_PLANE_FORMATS = {
    "yuv420p": "yuv420p",
    "yuvj420p": "yuv420p",
    "nv12": "nv12",
    "p010le": "p010",
}
"""PyAV frame formats read as planes -> the kernel's plane format."""
_SAMPLE_BYTES = {"yuv420p": 1, "nv12": 1, "p010": 2}
HD_MIN_ROWS = 720
CONVENTIONS = ("player", "swscale")


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


def colour_tags(frame: av.VideoFrame, convention: str = "player") -> tuple[str, str]:
    """(matrix, colour_range) for a frame, from its tags or the untagged `convention`."""
    if convention not in CONVENTIONS:
        raise YuvInputError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    space = int(frame.colorspace)
    if space == _AVCOL_SPC_BT709:
        matrix = "bt709"
    elif space in _AVCOL_SPC_BT601:
        matrix = "bt601"
    elif space in _AVCOL_SPC_BT2020:
        matrix = "bt2020"
    elif convention == "swscale":  # swscale's default for anything else
        matrix = "bt601"
    else:  # unspecified or exotic (SMPTE 240M, FCC): nearest common choice
        matrix = "bt709" if frame.height >= HD_MIN_ROWS else "bt601"
    full = int(frame.color_range) == _AVCOL_RANGE_JPEG or frame.format.name == "yuvj420p"
    return matrix, "full" if full else "limited"


def supported_format(frame: av.VideoFrame) -> bool:
    """Whether `planes_from_av_frame` reads this frame (software or CUDA) without conversion."""
    if frame.format.name == "cuda":
        sw_format = frame.sw_format
        return sw_format is not None and sw_format.name in ("nv12", "p010le") and (
            frame.width % 2 == 0 and frame.height % 2 == 0
        )
    return frame.format.name in _PLANE_FORMATS


def planes_from_av_frame(frame: av.VideoFrame, convention: str = "player") -> YuvPlanes:
    """Zero-copy (1, rows, cols) views of a yuv420p / yuvj420p / nv12 / p010le frame's planes,
    or of a CUDA frame's NV12 / P010 planes (CUDA tensors, through DLPack)."""
    matrix, colour_range = colour_tags(frame, convention)
    if frame.format.name == "cuda":
        return _device_planes(frame, matrix, colour_range)
    fmt = _PLANE_FORMATS.get(frame.format.name)
    if fmt is None:
        raise YuvInputError(
            f"frame format {frame.format.name!r} is not supported; use one of {sorted(_PLANE_FORMATS)} "
            "(reformat other formats, or decode hardware frames to nv12)"
        )
    chroma_h, chroma_w = (frame.height + 1) // 2, (frame.width + 1) // 2
    sample_bytes = _SAMPLE_BYTES[fmt]
    y = _plane_view(frame, 0, frame.height, frame.width, sample_bytes)
    if fmt in ("nv12", "p010"):
        uv = _plane_view(frame, 1, chroma_h, 2 * chroma_w, sample_bytes)
        planes: tuple[torch.Tensor, ...] = (y, uv.unflatten(-1, (chroma_w, 2)))
    else:
        planes = (
            y,
            _plane_view(frame, 1, chroma_h, chroma_w, sample_bytes),
            _plane_view(frame, 2, chroma_h, chroma_w, sample_bytes),
        )
    return YuvPlanes(fmt=fmt, planes=planes, matrix=matrix, colour_range=colour_range)


def _device_planes(frame: av.VideoFrame, matrix: str, colour_range: str) -> YuvPlanes:
    """A CUDA frame's planes as (1, ...) CUDA tensors that keep the frame's surface alive.

    PyAV refuses a DLPack `stream` argument (FFmpeg and torch both work on the legacy default
    stream here, so their work is ordered without one), which torch.from_dlpack would pass;
    the capsule is therefore taken with stream=None and handed to torch directly.
    """
    sw_format = frame.sw_format
    if not supported_format(frame):
        raise YuvInputError(
            f"CUDA frames of {sw_format.name if sw_format else 'unknown'} format at "
            f"{frame.width}x{frame.height} are not supported; NV12 or P010 at even sizes are"
        )
    fmt = _PLANE_FORMATS[sw_format.name]
    y, uv = (from_dlpack(plane.__dlpack__()) for plane in frame.planes[:2])
    return YuvPlanes(
        fmt=fmt, planes=(y.unsqueeze(0), uv.unsqueeze(0)), matrix=matrix, colour_range=colour_range
    )


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


def _plane_view(
    frame: av.VideoFrame, index: int, rows: int, row_samples: int, sample_bytes: int
) -> torch.Tensor:
    """(1, rows, row_samples) view of plane `index`, row stride = its line_size."""
    plane = frame.planes[index]
    line_size, row_bytes = plane.line_size, row_samples * sample_bytes
    if (
        line_size < row_bytes
        or line_size % sample_bytes
        or plane.buffer_size < (rows - 1) * line_size + row_bytes
    ):
        raise YuvInputError(
            f"plane {index} ({plane.buffer_size} bytes, line_size {line_size}) is too small "
            f"for {rows} rows of {row_bytes} bytes"
        )
    dtype = torch.uint8 if sample_bytes == 1 else torch.uint16
    with warnings.catch_warnings():
        # PyAV exposes frame buffers read-only to the buffer protocol; we never write them.
        warnings.simplefilter("ignore", UserWarning)
        flat = torch.frombuffer(plane, dtype=dtype, count=plane.buffer_size // sample_bytes)
    stride = line_size // sample_bytes
    return flat.as_strided((1, rows, row_samples), (rows * stride, stride, 1))
