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

    def to_wire(self) -> dict:
        return {
            "Codec": self.codec,
            "DurationMillis": self.duration_ms,
            "Format": self.format,
            "FrameRate": self.frame_rate,
            "FrameHeight": self.frame_height,
            "FrameWidth": self.frame_width,
            "ColorRange": self.color_range,
        }


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
