"""Choose hardware (NVDEC through CUDA) or software decoding, once per process, and log the choice.

PyAV's wheel ships FFmpeg with the CUDA hwaccel for H.264, HEVC, AV1, VP9 and more. On a GPU
node NVDEC decodes while the CPU scales and classifies; everywhere else software decoding is
the only option. "auto" uses NVDEC when a CUDA device can actually be opened (a build that
lists cuda is not enough: there may be no GPU or no driver) and decodes in software otherwise,
saying so once in the log. "cuda" insists and fails with VideoError when it cannot.

Where decoded frames are scaled is the second choice (`preprocess`). With NVDEC, and torch
seeing the CUDA device, and Triton installed, "auto" keeps the frames on the GPU
(`HWAccel(..., is_hw_owned=True)`): their NV12/P010 planes go through DLPack to the Triton
kernel of `kernels/` (engine/video/device_scaling.py), so only model-sized frames leave the
device. Otherwise frames are downloaded by PyAV (`is_hw_owned=False`) as semi-planar
NV12/P010; `software_frame` turns them into the planar format the software decoder would
have produced, so the swscale picks are identical whichever decoder ran. "kernel" uses the
kernels package on whatever device holds the frames (the CPU too: that is how the GPU path
is tested without a GPU); "swscale" never does.

A machine that shows a CUDA GPU but cannot open NVDEC (a container without the `video`
driver capability, which is where libnvcuvid comes from) decodes in software: the
`decode_path_report` says so, and the server logs it as a warning, exports it in
`modengine_decode_info` and in `/healthz`.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import logging
import sys
from dataclasses import dataclass

import av
from av.codec.hwaccel import HWAccel

from engine.video.types import VideoError

logger = logging.getLogger(__name__)

HWACCEL_MODES = ("auto", "cuda", "none")
PREPROCESS_MODES = ("auto", "kernel", "swscale")

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


def check_preprocess_mode(preprocess: str) -> None:
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(f"preprocess must be one of {PREPROCESS_MODES}, got {preprocess!r}")


@dataclass(frozen=True)
class DecodePath:
    """How one process decodes: the PyAV HWAccel (None: software) and where frames are scaled
    (`kernel_device` "cuda" or "cpu" for the kernels package; None for swscale)."""

    hardware: HWAccel | None
    kernel_device: str | None


def kernel_device(nvdec: bool, preprocess: str) -> str | None:
    """Where the kernels package scales frames: "cuda" (NVDEC frames kept on the GPU), "cpu"
    (preprocess "kernel" without that), or None for swscale. The one rule behind both
    `choose_decode_path` and `decode_path_report`."""
    if nvdec and preprocess != "swscale" and gpu_preprocess_unavailable_reason() is None:
        return "cuda"
    return "cpu" if preprocess == "kernel" else None


def choose_decode_path(hwaccel: str, preprocess: str = "auto") -> DecodePath:
    """The decoder and the scaler for `hwaccel` and `preprocess` (module docstring)."""
    check_preprocess_mode(preprocess)
    hardware = choose_hwaccel(hwaccel)
    device = kernel_device(hardware is not None, preprocess)
    if device == "cuda":
        _log_once("video decode: NVDEC frames stay on the GPU (Triton preprocessing)")
        return DecodePath(
            HWAccel(device_type="cuda", allow_software_fallback=hwaccel == "auto",
                    is_hw_owned=True),
            "cuda",
        )
    if hardware is not None and preprocess != "swscale":
        _log_once("video decode: NVDEC frames are downloaded and scaled on the CPU "
                  f"({gpu_preprocess_unavailable_reason()})")
    return DecodePath(hardware, device)


@functools.cache
def gpu_preprocess_unavailable_reason() -> str | None:
    """None when torch sees a CUDA device and Triton is installed; else why not."""
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    return None


def decode_path_report(hwaccel: str, preprocess: str = "auto") -> dict:
    """What this machine's decoding does under the settings, for logs, metrics and /healthz.

    `nvdec_fallback` is True when NVDEC was wanted (hwaccel "auto" or "cuda") and a CUDA GPU
    is visible to torch, yet NVDEC cannot be opened: the silent-CPU-decode case.
    """
    check_hwaccel_mode(hwaccel)
    check_preprocess_mode(preprocess)
    reason = None if hwaccel == "none" else cuda_unavailable_reason()
    nvdec = hwaccel != "none" and reason is None
    device = kernel_device(nvdec, preprocess)
    scaler = f"kernel-{device}" if device else "swscale"
    fallback = hwaccel != "none" and not nvdec and _gpu_visible()
    report = {
        "hwaccel": hwaccel,
        "decoder": "nvdec" if nvdec else "software",
        "scaler": scaler,
        "nvdec_fallback": fallback,
    }
    if fallback:
        report["reason"] = (
            f"a CUDA GPU is visible but NVDEC cannot be used ({reason}); videos decode on the "
            "CPU. In a container, NVIDIA_DRIVER_CAPABILITIES must include 'video' (it mounts "
            "libnvcuvid)."
        )
    return report


def _gpu_visible() -> bool:
    """Whether this machine shows an NVIDIA GPU: torch's answer where torch is already loaded,
    else the driver's device nodes. Never imports torch: in a decode worker that alone costs
    some 400 MiB of resident memory (tests/integration/test_hostile_jobs.py measures it)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.cuda.is_available()
    return bool(glob.glob("/dev/nvidia[0-9]*"))


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
        message = f"video decode: software (no usable CUDA device: {reason})"
        _log_once(message, logging.WARNING if _gpu_visible() else logging.INFO)
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
    """The frame in the planar format a software decode gives (device downloads are semi-planar).

    A CUDA frame kept on the device (the kernel path's fallback for a format the kernel does
    not read) is downloaded here, by the same reformat.
    """
    name = frame.format.name
    if name == "cuda" and frame.sw_format is not None:
        name = frame.sw_format.name
        planar = _PLANAR_EQUIVALENT.get(name, name)
        return frame.reformat(format=planar)
    if name in _DEVICE_FORMATS:
        raise VideoError(f"internal error: a {name} frame was not downloaded from the GPU")
    planar = _PLANAR_EQUIVALENT.get(name)
    return frame if planar is None else frame.reformat(format=planar)


def _log_once(message: str, level: int = logging.INFO) -> None:
    if message not in _logged_messages:
        _logged_messages.add(message)
        logger.log(level, message)
