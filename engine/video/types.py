"""Plain data that crosses the video module's boundary: metadata, segments, sampled frames.

Units are in names: `*_ms` are integer milliseconds on the media timeline (as on the wire),
`*_s` are float seconds. Ranges are half-open, [start, stop).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class VideoMetadata:
    """Rekognition's VideoMetadata. Width/height are the displayed size (after rotation)."""

    codec: str
    duration_ms: int
    format: str
    frame_rate: float
    frame_height: int
    frame_width: int
    color_range: str  # "FULL" | "LIMITED"


@dataclass(frozen=True)
class VideoProbe:
    """Everything the planner needs, read from the container and packets without decoding."""

    metadata: VideoMetadata
    keyframes_ms: tuple[int, ...]
    """Presentation times of keyframes, ascending; the first is where decoding can start."""
    start_ms: int
    """Presentation time of the first frame (streams may not start at 0)."""
    rotation_degrees: int
    """Counter-clockwise display rotation to apply to decoded frames (0, 90, 180, 270)."""
    stream_index: int = 0


@dataclass(frozen=True)
class Segment:
    """A keyframe-aligned slice of the timeline owning the sample times in [start_ms, stop_ms).

    Decoding starts at `start_ms`, which is a keyframe's presentation time (or the stream start).
    """

    index: int
    start_ms: int
    stop_ms: int

    @property
    def duration_ms(self) -> int:
        return self.stop_ms - self.start_ms


@dataclass(frozen=True)
class SegmentDecodeRequest:
    """Everything decoding one segment's sample frames takes (engine.video.decode_sampled_frames):
    the one typed request the cluster's segment task, batch and the report's thumbnails build,
    instead of a row of positional arguments."""

    source: str
    """What the decoder opens: a local path or a presigned URL."""
    probe: VideoProbe
    segment: Segment
    sample_interval_ms: int
    output_size: tuple[int, int]
    """(height, width) of the frames, e.g. the model's input size."""
    mode: str = "accurate"
    """"accurate" or "keyframes" (engine.video.DECODE_MODES)."""
    threads: int = 1
    """FFmpeg decode threads (0: one per core)."""
    hwaccel: str = "auto"
    """"auto", "cuda" or "none" (engine.video.HWACCEL_MODES)."""
    preprocess: str = "auto"
    """Where frames are scaled: "auto", "kernel" or "swscale" (engine.video.PREPROCESS_MODES)."""


@dataclass
class FrameBatch:
    """Sampled frames of one segment: uint8 RGB (N, H, W, 3) and each frame's real PTS in ms.

    `sample_times_ms[i]` is the sample time the frame was chosen for; `timestamps_ms[i]` is the
    chosen frame's own presentation time (what detections report).
    """

    frames: np.ndarray
    timestamps_ms: list[int]
    sample_times_ms: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (N, H, W, 3), got {self.frames.dtype} {self.frames.shape}")
        if len(self.timestamps_ms) != self.frames.shape[0]:
            raise ValueError("one timestamp per frame is required")
        if self.sample_times_ms and len(self.sample_times_ms) != len(self.timestamps_ms):
            raise ValueError("one sample time per frame is required")

    def __len__(self) -> int:
        return len(self.timestamps_ms)


class VideoError(Exception):
    """A video cannot be processed; the message is written for a person (it becomes StatusMessage)."""
