"""Video access for the engine: probe (metadata, keyframes), segment plan, decode + sample.

Callers use only these names; the modules behind them are free to change.
"""

from engine.video.decode import DECODE_MODES, decode_segment
from engine.video.hwdecode import HWACCEL_MODES
from engine.video.limits import DEFAULT_MAX_FRAME_PIXELS
from engine.video.plan import plan_segments, sample_times_ms
from engine.video.probe import probe_video
from engine.video.types import FrameBatch, Segment, VideoError, VideoMetadata, VideoProbe

__all__ = [
    "DECODE_MODES",
    "DEFAULT_MAX_FRAME_PIXELS",
    "HWACCEL_MODES",
    "FrameBatch",
    "Segment",
    "VideoError",
    "VideoMetadata",
    "VideoProbe",
    "decode_segment",
    "plan_segments",
    "probe_video",
    "sample_times_ms",
]
