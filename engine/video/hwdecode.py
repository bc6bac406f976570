"""Choose hardware (NVDEC through CUDA) or software decoding, once per process, and log the choice.

PyAV's wheel ships FFmpeg with the CUDA hwaccel for H.264, HEVC, AV1, VP9 and more. On a GPU
node NVDEC decodes while the CPU scales and classifies; everywhere else software decoding is
the only option. "auto" uses NVDEC when a CUDA device can actually be opened (a build that
lists cuda is not enough: there may be no GPU or no driver) and decodes in software otherwise,
saying so once in the log. "cuda" insists and fails with VideoError when it cannot.

Frames decoded on the device are downloaded by PyAV (`is_hw_owned=False`) as semi-planar
NV12/P010; `software_frame` turns them into the planar format the software decoder would have
produced, so the scaled RGB picks are identical whichever decoder ran.
"""

from __future__ import annotations

import functools
import logging

import av
from av.codec.hwaccel import HWAccel

from engine.video.types import VideoError

logger = logging.getLogger(__name__)

HWACCEL_MODES = ("auto", "cuda", "none")

_PLANAR_EQUIVALENT = {
    "nv12": "yuv420p",
    "nv21": "yuv420p",
    "p010le": "yuv420p10le",
    "p016le": "yuv420p16le",
    "nv16": "yuv422p",
    "nv24": "yuv444p",
}
"""Formats a hardware download yields -> the software decoder's format for the same stream."""

_DEVICE_FORMATS = frozenset(
    {
        "cuda",
        "vaapi",
        "vdpau",
        "qsv",
        "d3d11",
        "dxva2_vld",
        "videotoolbox_vld",
        "drm_prime",
        "vulkan",
    }
)

_logged_messages: set[str] = set()


def check_hwaccel_mode(hwaccel: str) -> None:
    if hwaccel not in HWACCEL_MODES:
        raise ValueError(f"hwaccel must be one of {HWACCEL_MODES}, got {hwaccel!r}")


def choose_hwaccel(hwaccel: str) -> HWAccel | None:
    """The PyAV HWAccel to open containers with, or None for software decoding.

    Raises VideoError when "cuda" is demanded and no CUDA device can be opened here.
    """
    check_hwaccel_mode(hwaccel)
    if hwaccel == "none":
        _log_once("video decode: software (hardware decoding switched off)")
        return None
    reason = cuda_unavailable_reason()
    if reason is not None:
        if hwaccel == "cuda":
            raise VideoError(
                "Hardware video decoding was requested (hwaccel='cuda') but no CUDA device "
                f"can be used on this machine ({reason}). Use hwaccel='auto' or 'none'."
            )
        _log_once(f"video decode: software (no usable CUDA device: {reason})")
        return None
    _log_once(f"video decode: NVDEC on CUDA device (hwaccel={hwaccel})")
    return HWAccel(device_type="cuda", allow_software_fallback=hwaccel == "auto")


@functools.cache
def cuda_unavailable_reason() -> str | None:
    """None when a CUDA device context opens; else why not. Tried once per process."""
    if "cuda" not in av.codec.hwaccel.hwdevices_available():
        return "this FFmpeg build has no CUDA support"
    try:
        HWAccel(device_type="cuda").create(av.Codec("h264", "r"))
    except av.error.FFmpegError as error:
        return f"opening the device failed: {error.strerror or 'unknown error'}"
    except (NotImplementedError, RuntimeError, ValueError) as error:
        return f"opening the device failed: {error}"
    return None


def software_frame(frame: av.VideoFrame) -> av.VideoFrame:
    """The frame in the planar format a software decode gives (device downloads are semi-planar)."""
    name = frame.format.name
    if name in _DEVICE_FORMATS:
        raise VideoError(f"internal error: a {name} frame was not downloaded from the GPU")
    planar = _PLANAR_EQUIVALENT.get(name)
    return frame if planar is None else frame.reformat(format=planar)


def _log_once(message: str) -> None:
    if message not in _logged_messages:
        _logged_messages.add(message)
        logger.info(message)
