"""Video access for the engine: probe (metadata, keyframes), segment plan, decode + sample.

Callers use only these names (and the plain data of engine/video/types.py); the modules behind
them are free to change.
"""

from engine.video.decode import (
    DECODE_MODES,
    decode_sampled_frames,
    decode_segment,
    unique_frames,
)
from engine.video.hwdecode import HWACCEL_MODES, PREPROCESS_MODES, decode_path_report
from engine.video.limits import DEFAULT_MAX_FRAME_PIXELS, check_duration
from engine.video.plan import plan_segments, sample_times_ms
from engine.video.probe import probe_video
from engine.video.types import FrameBatch, Segment, SegmentDecodeRequest, VideoError, VideoProbe

__all__ = [
    "DECODE_MODES",
    "DEFAULT_MAX_FRAME_PIXELS",
    "HWACCEL_MODES",
    "PREPROCESS_MODES",
    "FrameBatch",
    "Segment",
    "SegmentDecodeRequest",
    "VideoError",
    "VideoProbe",
    "check_duration",
    "decode_path_report",
    "decode_sampled_frames",
    "decode_segment",
    "plan_segments",
    "probe_video",
    "sample_times_ms",
    "unique_frames",
]
