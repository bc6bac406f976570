"""Validated parameters shared by the YUV -> model-input kernel and its torch reference.

Both implementations must agree bit for bit on what the inputs mean, so everything that is
a *decision* (which plane layout, which colour matrix, which range, how the output is
normalised) is checked and turned into plain numbers here, once. This module knows nothing
about Triton or PyAV; it only needs torch to look at plane shapes.

Colour conversion (ITU-R BT.601 / BT.709, in 0..255 units)::

    R = y_scale * (Y - y_offset)                  + r_cr * (V - 128)
    G = y_scale * (Y - y_offset) + g_cb * (U - 128) + g_cr * (V - 128)
    B = y_scale * (Y - y_offset) + b_cb * (U - 128)

limited ("tv"/"mpeg") range: Y in 16..235 and U/V in 16..240, so y_scale = 255/219 and the
chroma terms carry 255/224; full ("pc"/"jpeg") range: y_offset 0 and scales 1.

P010 (NVDEC's 10-bit output) holds each 10-bit sample in the high bits of a uint16, so a sample
divided by 256 is its value in the same 0..255 units (`sample_scale`) and every formula above
applies unchanged.

Resizing is a table of taps per output row and per output column (`resize_taps`): bilinear
with half-pixel centres, optionally antialiased (a triangle filter widened by the downscale
ratio, torch's `antialias=True`, which is also what swscale's BILINEAR does when it shrinks).
The kernel and the reference read the same tables, so they blend the same pixels with the
same weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

PLANE_FORMATS = ("nv12", "yuv420p", "p010")
SAMPLE_SCALES = {"nv12": 1.0, "yuv420p": 1.0, "p010": 1.0 / 256.0}
"""What one stored sample is worth in 0..255 units (P010: 10 bits in the top of 16)."""
_PLANE_DTYPES = {"nv12": torch.uint8, "yuv420p": torch.uint8, "p010": torch.uint16}
COLOUR_MATRICES = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}  # (Kr, Kb)
_MATRIX_ALIASES = {
    "bt601": "bt601",
    "bt470bg": "bt601",
    "smpte170m": "bt601",
    "itu601": "bt601",
    "bt709": "bt709",
    "itu709": "bt709",
    "bt2020": "bt2020",
    "bt2020nc": "bt2020",
    "bt2020ncl": "bt2020",
}
_RANGE_ALIASES = {
    "limited": "limited",
    "tv": "limited",
    "mpeg": "limited",
    "full": "full",
    "pc": "full",
    "jpeg": "full",
}


class YuvInputError(ValueError):
    """Planes, format, matrix, range, size or normalisation that the converter cannot accept."""


@dataclass(frozen=True)
class ColourCoefficients:
    """The six numbers of the YUV -> RGB affine map (see the module docstring)."""

    y_offset: float
    y_scale: float
    r_cr: float
    g_cb: float
    g_cr: float
    b_cb: float


@dataclass(frozen=True)
class Normalisation:
    """Per-channel (x/255 - mean) / std; None in the converter means plain uint8 output."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def canonical_matrix(matrix: str) -> str:
    """'bt601' or 'bt709' for any accepted spelling (FFmpeg names included)."""
    name = _MATRIX_ALIASES.get(
        str(matrix).lower().replace("-", "").replace(".", "").replace("_", "")
    )
    if name is None:
        raise YuvInputError(
            f"colour matrix {matrix!r} is not supported; use one of {sorted(COLOUR_MATRICES)}"
        )
    return name


def canonical_range(colour_range: str) -> str:
    """'limited' or 'full' for any accepted spelling ('tv'/'mpeg', 'pc'/'jpeg')."""
    name = _RANGE_ALIASES.get(str(colour_range).lower())
    if name is None:
        raise YuvInputError(
            f"colour range {colour_range!r} is not supported; use 'limited' ('tv') or 'full' ('pc')"
        )
    return name


def colour_coefficients(matrix: str, colour_range: str) -> ColourCoefficients:
    """Derive the affine map from Kr/Kb so BT.601 and BT.709 share one formula."""
    kr, kb = COLOUR_MATRICES[canonical_matrix(matrix)]
    kg = 1.0 - kr - kb
    if canonical_range(colour_range) == "limited":
        y_offset, y_scale, c_scale = 16.0, 255.0 / 219.0, 255.0 / 224.0
    else:
        y_offset, y_scale, c_scale = 0.0, 1.0, 1.0
    return ColourCoefficients(
        y_offset=y_offset,
        y_scale=y_scale,
        r_cr=c_scale * 2.0 * (1.0 - kr),
        g_cb=-c_scale * 2.0 * kb * (1.0 - kb) / kg,
        g_cr=-c_scale * 2.0 * kr * (1.0 - kr) / kg,
        b_cb=c_scale * 2.0 * (1.0 - kb),
    )


def normalisation(
    mean: Sequence[float] | None, std: Sequence[float] | None
) -> Normalisation | None:
    """Both None -> uint8 output; both three positive-std floats -> float32 normalised output."""
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise YuvInputError("mean and std must be given together (or both None for uint8 output)")
    mean_t, std_t = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean_t) != 3 or len(std_t) != 3:
        raise YuvInputError(f"mean and std need 3 values each, got {mean_t} and {std_t}")
    if any(not s > 0.0 for s in std_t):
        raise YuvInputError(f"std values must be > 0, got {std_t}")
    return Normalisation(mean=mean_t, std=std_t)  # type: ignore[arg-type]


def output_size(out_size: Sequence[int]) -> tuple[int, int]:
    """(out_h, out_w) as positive ints."""
    if len(out_size) != 2 or any(int(s) != s or s <= 0 for s in out_size):
        raise YuvInputError(f"out_size must be (out_h, out_w) positive ints, got {tuple(out_size)}")
    return int(out_size[0]), int(out_size[1])


def split_planes(
    planes: Sequence[torch.Tensor], fmt: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (Y, U, V) as batched (N, rows, cols) views, strides untouched.

    NV12's interleaved UV plane becomes two views with a column stride of 2, so the kernel
    and the reference read both formats through the same (batch, row, column) strides.
    Accepted NV12 chroma shapes: (N, Hc, Wc, 2) or (N, Hc, 2*Wc); a 2-D/3-D plane without
    the batch axis means one frame. Chroma planes must be ceil(H/2) x ceil(W/2).
    """
    fmt = str(fmt).lower()
    if fmt not in PLANE_FORMATS:
        raise YuvInputError(f"plane format {fmt!r} is not supported; use one of {PLANE_FORMATS}")
    expected = 2 if fmt in ("nv12", "p010") else 3
    if len(planes) != expected:
        raise YuvInputError(f"{fmt} needs {expected} planes, got {len(planes)}")
    dtype = _PLANE_DTYPES[fmt]
    y = _batched(planes[0], 2, "Y", dtype)
    height, width = y.shape[1], y.shape[2]
    chroma_h, chroma_w = (height + 1) // 2, (width + 1) // 2
    if fmt in ("nv12", "p010"):
        uv = planes[1]
        if uv.dim() >= 3 and uv.shape[-1] == 2 and uv.shape[-2] == chroma_w:
            uv = _batched(uv, 3, "UV", dtype)
        else:
            uv = _batched(uv, 2, "UV", dtype)
            if uv.shape[-1] != 2 * chroma_w:
                raise YuvInputError(
                    f"{fmt} UV rows must hold {2 * chroma_w} samples, got {uv.shape[-1]}"
                )
            uv = uv.unflatten(-1, (chroma_w, 2))
        u, v = uv[..., 0], uv[..., 1]
    else:
        u, v = _batched(planes[1], 2, "U", dtype), _batched(planes[2], 2, "V", dtype)
    for name, plane in (("U", u), ("V", v)):
        if tuple(plane.shape) != (y.shape[0], chroma_h, chroma_w):
            raise YuvInputError(
                f"{name} plane shape {tuple(plane.shape)} does not match Y {tuple(y.shape)}: "
                f"expected {(y.shape[0], chroma_h, chroma_w)}"
            )
        if plane.device != y.device:
            raise YuvInputError(f"{name} plane is on {plane.device} but Y is on {y.device}")
    return y, u, v


def _batched(
    plane: torch.Tensor, frame_dims: int, name: str, dtype: torch.dtype
) -> torch.Tensor:
    if not isinstance(plane, torch.Tensor) or plane.dtype != dtype:
        raise YuvInputError(
            f"{name} plane must be a {dtype} torch.Tensor, got "
            f"{getattr(plane, 'dtype', type(plane))}"
        )
    if plane.dim() == frame_dims:
        plane = plane.unsqueeze(0)
    if plane.dim() != frame_dims + 1 or plane.numel() == 0:
        raise YuvInputError(
            f"{name} plane must be (N, ...) with {frame_dims} frame dims, got {tuple(plane.shape)}"
        )
    return plane


@dataclass(frozen=True)
class ResizeTaps:
    """For each output index i: source indices first[i] + t (clamped to the input) weighted
    weights[i, t], t < taps. Float32 tables on the CPU; weights of one row sum to 1."""

    first: torch.Tensor
    weights: torch.Tensor

    @property
    def taps(self) -> int:
        return int(self.weights.shape[1])


def resize_taps(in_len: int, out_len: int, antialias: bool) -> ResizeTaps:
    """Tap table of a half-pixel-centred bilinear resize from in_len to out_len samples.

    Without antialias (or when enlarging) this is torch's bilinear with align_corners=False:
    2 taps, the scale a float32 in/out ratio. With antialias a shrink uses a triangle filter
    as wide as the ratio (torch's `antialias=True`), so every source pixel counts.
    """
    scale = in_len / out_len
    if not antialias or scale <= 1.0:
        ratio = torch.tensor(scale, dtype=torch.float32)
        src = ((torch.arange(out_len, dtype=torch.float32) + 0.5) * ratio - 0.5).clamp_min(0.0)
        first = src.floor().clamp_max(in_len - 1)
        high = src - first
        return ResizeTaps(first.to(torch.int32), torch.stack((1.0 - high, high), dim=1))
    support = scale  # half-width of the widened triangle, in source pixels
    taps = math.ceil(support) * 2 + 1
    centre = (torch.arange(out_len, dtype=torch.float64) + 0.5) * scale
    first = (centre - support + 0.5).floor().clamp_min(0.0)
    last = (centre + support + 0.5).floor().clamp_max(in_len)
    index = first[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    weights = (1.0 - ((index - centre[:, None] + 0.5) / scale).abs()).clamp_min(0.0)
    weights = torch.where(index < last[:, None], weights, 0.0)
    weights = weights / weights.sum(dim=1, keepdim=True)
    return ResizeTaps(first.to(torch.int32), weights.to(torch.float32))
