"""Test-video generator shared by all tests: small files whose content is known exactly.

Two kinds of video:
- `make_colour_video`: every frame is one solid colour (or a top/bottom pair), changing at
  known times, so any sampled frame can be checked by its colour (`ColourTruth.colour_at`).
- `make_pattern_video`: every frame different (moving gradient, bar and noise), for tests
  that compare pixels against a brute-force full decode.

Both write H.264 (libx264) or HEVC (libx265) in yuv420p through PyAV; the container follows
the file suffix (.mp4, .mov, .mkv). Sizes must be even; HEVC needs at least 64x40 (libx265
corrupts memory on tiny frames, so smaller sizes raise ValueError). Times in the truth
objects use the engine's convention: integer ms after the first frame, `ceil`-rounded, read
back from the written file's packets.

Rotation: `rotation` is written as the display matrix (`stream.set_display_rotation`); a
player rotates the coded picture counter-clockwise by it (FFmpeg's convention: a portrait phone
video reads 270, i.e. -90). `size` is the CODED (width, height); the displayed size is swapped
for 90/270. Colour pairs are laid out in the DISPLAYED picture (top, bottom), so an upright
decode shows the first colour on top.

Stable API (other tests import it): COLOURS, ColourTruth, make_colour_video,
make_pattern_video, PatternInfo, read_frame_times_ms, closest_colour, ReferenceFrame,
decode_reference_frames, pick_reference_frames, remux_with_leading_cut.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.video.scaling import SWSCALE_FLAGS

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
}
"""Pure colours, far apart in RGB, so lossy coding never confuses them."""

ColourSpec = str | tuple[int, int, int]
PaintSpec = ColourSpec | tuple[ColourSpec, ColourSpec]
"""A colour (name or RGB) for the whole frame, or a (top, bottom) pair of them."""

_VFR_INTERVALS_S = (
    Fraction(1, 60),
    Fraction(1, 30),
    Fraction(1, 24),
    Fraction(1, 15),
    Fraction(1, 10),
)
_VFR_TIME_BASE = Fraction(1, 90000)


@dataclass(frozen=True)
class ColourTruth:
    """What a colour video shows, frame by frame, in the engine's ms convention."""

    frame_times_ms: list[int]
    """Each frame's presentation time, ms after the first frame, ascending."""
    frame_paints: list[tuple[str, str]]
    """(top, bottom) colour name of each frame; equal for whole-frame colours."""
    stretches: list[tuple[int, int, str]]
    """(start_ms, stop_ms, top colour) runs, half-open, covering [0, duration_ms)."""
    duration_ms: int
    coded_size: tuple[int, int]
    """(width, height) as encoded."""
    rotation_degrees: int

    @property
    def displayed_size(self) -> tuple[int, int]:
        width, height = self.coded_size
        return (height, width) if self.rotation_degrees in (90, 270) else (width, height)

    def frame_index_at(self, t_ms: int) -> int:
        """Index of the frame on screen at t: greatest time <= t, else the first frame."""
        return max(0, bisect.bisect_right(self.frame_times_ms, t_ms) - 1)

    def frame_time_at(self, t_ms: int) -> int:
        return self.frame_times_ms[self.frame_index_at(t_ms)]

    def colour_at(self, t_ms: int) -> str:
        """Colour name (the top one for pairs) of the frame on screen at t."""
        return self.frame_paints[self.frame_index_at(t_ms)][0]

    def paint_at(self, t_ms: int) -> tuple[str, str]:
        return self.frame_paints[self.frame_index_at(t_ms)]


@dataclass(frozen=True)
class PatternInfo:
    """What a pattern video holds (its pixels are checked against a reference decode)."""

    frame_times_ms: list[int]
    duration_ms: int
    coded_size: tuple[int, int]


def closest_colour(pixels: np.ndarray) -> str:
    """Name of the palette colour nearest to the mean of `pixels` (..., 3) RGB."""
    mean = np.asarray(pixels, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    return min(COLOURS, key=lambda name: float(np.sum((mean - np.array(COLOURS[name])) ** 2)))


def make_colour_video(
    path: str | Path,
    colours: list[tuple[PaintSpec, float]],
    fps: float | Fraction = 30,
    codec: str = "h264",
    size: tuple[int, int] = (64, 48),
    gop_s: float = 1.0,
    bframes: bool = True,
    vfr: bool = False,
    rotation: int = 0,
    start_s: float = 0.0,
    seed: int = 0,
    full_range: bool = False,
    open_gop: bool = False,
) -> ColourTruth:
    """Write a video of solid colours shown for the given seconds each; return the truth.

    `fps` may be 29.97 (stored as 30000/1001). `vfr=True` draws irregular frame intervals
    (1/60..1/10 s, seeded) instead of a constant rate. `start_s` makes the first frame's
    presentation time non-zero. `full_range=True` flags the stream as JPEG/full range.
    `open_gop=True` lets frames before a keyframe reference it (CRA / non-IDR I-frames).
    Colour changes land on the first frame at or after the cumulative time.
    """
    change_times_s = np.cumsum(
        [Fraction(seconds).limit_denominator(1000) for _, seconds in colours]
    )
    paints = [_resolve_paint(paint) for paint, _ in colours]
    total_s = change_times_s[-1]
    frame_times_s = _frame_times_s(_as_rate(fps), total_s, vfr, seed)
    frame_paints = [
        paints[min(bisect.bisect_right(change_times_s, t), len(paints) - 1)] for t in frame_times_s
    ]
    coded_width, coded_height = size

    def picture(index: int) -> np.ndarray:
        return _painted_frame(frame_paints[index], coded_width, coded_height, rotation)

    _encode(
        path,
        picture,
        frame_times_s,
        _as_rate(fps),
        codec,
        size,
        gop_s,
        bframes,
        vfr,
        rotation,
        start_s,
        full_range,
        open_gop,
    )
    times_ms = read_frame_times_ms(path)
    if len(times_ms) != len(frame_times_s):
        raise RuntimeError(f"wrote {len(frame_times_s)} frames but read back {len(times_ms)}")
    names = [(_name_of(top), _name_of(bottom)) for top, bottom in frame_paints]
    duration_ms = _duration_ms(frame_times_s, _as_rate(fps), vfr, total_s)
    return ColourTruth(
        frame_times_ms=times_ms,
        frame_paints=names,
        stretches=_stretches(times_ms, [top for top, _ in names], duration_ms),
        duration_ms=duration_ms,
        coded_size=(coded_width, coded_height),
        rotation_degrees=rotation % 360,
    )


def make_pattern_video(
    path: str | Path,
    duration_s: float = 4.0,
    fps: float | Fraction = 30,
    codec: str = "h264",
    size: tuple[int, int] = (96, 64),
    gop_s: float = 2.0,
    bframes: bool = True,
    vfr: bool = False,
    rotation: int = 0,
    start_s: float = 0.0,
    seed: int = 0,
    open_gop: bool = False,
    leading_pictures: int = 0,
) -> PatternInfo:
    """Write a video whose every frame differs (moving gradient and bar, light noise).

    `leading_pictures` (HEVC only) lets that many frames before each keyframe in display order
    follow it in decode order (x265 `radl`: IDR_W_RADL keyframes with RADL pictures).
    """
    rate = _as_rate(fps)
    total_s = Fraction(duration_s).limit_denominator(1000)
    frame_times_s = _frame_times_s(rate, total_s, vfr, seed)
    width, height = size
    generator = np.random.default_rng(seed)
    columns = np.arange(width, dtype=np.int32)[None, :]
    rows = np.arange(height, dtype=np.int32)[:, None]

    def picture(index: int) -> np.ndarray:
        frame = np.empty((height, width, 3), np.uint8)
        frame[..., 0] = ((columns * 4 + index * 7) % 256).astype(np.uint8)
        frame[..., 1] = ((rows * 4 + index * 3) % 256).astype(np.uint8)
        frame[..., 2] = ((columns + rows + index * 11) % 256).astype(np.uint8)
        bar_left = (index * 5) % max(1, width - 8)
        frame[:, bar_left : bar_left + 8] = 255 - frame[:, bar_left : bar_left + 8]
        noise = generator.integers(-12, 13, size=frame.shape, dtype=np.int16)
        return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)

    _encode(
        path,
        picture,
        frame_times_s,
        rate,
        codec,
        size,
        gop_s,
        bframes,
        vfr,
        rotation,
        start_s,
        open_gop=open_gop,
        leading_pictures=leading_pictures,
    )
    times_ms = read_frame_times_ms(path)
    return PatternInfo(
        frame_times_ms=times_ms,
        duration_ms=_duration_ms(frame_times_s, rate, vfr, total_s),
        coded_size=size,
    )


def read_frame_times_ms(path: str | Path) -> list[int]:
    """Presentation times of all video packets, ceil-ms after the first, read without decoding."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = sorted(p.pts for p in container.demux(stream) if p.size and p.pts is not None)
        time_base = stream.time_base
    return [math.ceil((value - pts[0]) * time_base * 1000) for value in pts]


def _as_rate(fps: float | Fraction) -> Fraction:
    if isinstance(fps, Fraction):
        return fps
    if abs(fps - 29.97) < 0.01:
        return Fraction(30000, 1001)
    if abs(fps - 59.94) < 0.01:
        return Fraction(60000, 1001)
    return Fraction(fps).limit_denominator(1001)


def _frame_times_s(rate: Fraction, total_s: Fraction, vfr: bool, seed: int) -> list[Fraction]:
    if not vfr:
        return [i / rate for i in range(math.ceil(total_s * rate))]
    chooser = random.Random(seed)
    times = [Fraction(0)]
    while True:
        following = times[-1] + chooser.choice(_VFR_INTERVALS_S)
        if following >= total_s:
            return times
        times.append(following)


def _duration_ms(
    frame_times_s: list[Fraction], rate: Fraction, vfr: bool, total_s: Fraction
) -> int:
    """Constant rate: frames / rate. VFR: up to the requested total (the last frame's length is a guess)."""
    if vfr:
        return round(total_s * 1000)
    return round(len(frame_times_s) / rate * 1000)


def _encode(
    path,
    picture,
    frame_times_s,
    rate,
    codec,
    size,
    gop_s,
    bframes,
    vfr,
    rotation,
    start_s,
    full_range=False,
    open_gop=False,
    leading_pictures=0,
) -> None:
    """Encode pictures at the given times (seconds from 0, shifted by start_s)."""
    encoder = {"h264": "libx264", "hevc": "libx265", "h265": "libx265"}[codec]
    if encoder == "libx265" and (size[0] < 64 or size[1] < 40):
        # Seen here: libx265 4.2 corrupts the heap at 48x32 and the process aborts later.
        raise ValueError(f"libx265 needs frames of at least 64x40, got {size[0]}x{size[1]}")
    time_base = _VFR_TIME_BASE if vfr else 1 / rate
    gop_frames = max(1, round(gop_s * rate))
    start_offset = Fraction(start_s).limit_denominator(1000)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(encoder, rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = time_base
        stream.codec_context.options = _encoder_options(
            encoder, gop_frames, bframes, open_gop, leading_pictures
        )
        if full_range:
            stream.codec_context.color_range = av.video.reformatter.ColorRange.JPEG
        if rotation % 360:
            stream.set_display_rotation(rotation)  # raw, so -90 is written as -90
        for index, time_s in enumerate(frame_times_s):
            frame = av.VideoFrame.from_ndarray(picture(index), format="rgb24")
            frame.pts = round((time_s + start_offset) / time_base)
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _encoder_options(
    encoder: str, gop_frames: int, bframes: bool, open_gop: bool = False, leading_pictures: int = 0
) -> dict[str, str]:
    """Fixed GOPs (no scene-cut keyframes) so keyframe positions are predictable."""
    params = f"keyint={gop_frames}:min-keyint={gop_frames}:scenecut=0:bframes={3 if bframes else 0}"
    params += f":open-gop={int(open_gop)}"
    if leading_pictures and encoder != "libx265":
        raise ValueError("leading_pictures needs HEVC (x265 radl)")
    if encoder == "libx265":
        params += f":radl={leading_pictures}" if leading_pictures else ""
        return {"x265-params": params + ":log-level=error", "preset": "ultrafast"}
    return {"x264-params": params, "preset": "veryfast"}


def _resolve_paint(paint: PaintSpec) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    if isinstance(paint, tuple) and len(paint) == 2:
        return _resolve_colour(paint[0]), _resolve_colour(paint[1])
    colour = _resolve_colour(paint)  # type: ignore[arg-type]
    return colour, colour


def _resolve_colour(colour: ColourSpec) -> tuple[int, int, int]:
    if isinstance(colour, str):
        return COLOURS[colour]
    red, green, blue = colour
    return int(red), int(green), int(blue)


def _name_of(rgb: tuple[int, int, int]) -> str:
    for name, value in COLOURS.items():
        if value == rgb:
            return name
    return "rgb({},{},{})".format(*rgb)


def _painted_frame(paint, coded_width: int, coded_height: int, rotation: int) -> np.ndarray:
    """Top/bottom halves in display orientation, turned back into coded orientation."""
    quarter_turns = (rotation % 360) // 90
    if quarter_turns % 2:
        shown_height, shown_width = coded_width, coded_height
    else:
        shown_height, shown_width = coded_height, coded_width
    shown = np.empty((shown_height, shown_width, 3), np.uint8)
    shown[: shown_height // 2] = paint[0]
    shown[shown_height // 2 :] = paint[1]
    return np.ascontiguousarray(np.rot90(shown, k=-quarter_turns))


def _stretches(
    times_ms: list[int], tops: list[str], duration_ms: int
) -> list[tuple[int, int, str]]:
    runs: list[tuple[int, int, str]] = []
    for index, (time_ms, colour) in enumerate(zip(times_ms, tops)):
        if runs and runs[-1][2] == colour:
            continue
        if runs:
            runs[-1] = (runs[-1][0], time_ms, runs[-1][2])
        runs.append((0 if index == 0 else time_ms, duration_ms, colour))
    return runs


@dataclass(frozen=True)
class ReferenceFrame:
    """One frame of a brute-force decode: ms after the first frame, keyframe flag, upright RGB."""

    time_ms: int
    is_keyframe: bool
    rgb: np.ndarray


def decode_reference_frames(path: str | Path, output_size: tuple[int, int]) -> list[ReferenceFrame]:
    """Decode EVERY frame from the start, no seeking, scaled like the engine and turned upright.

    Independent of engine/video on purpose: the rotation comes from each frame's own display
    matrix and the first time from the smallest decoded pts. Scaling uses the same swscale call
    (rgb24, bilinear) so pixels can be compared exactly.
    """
    height, width = output_size
    decoded = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base
        for frame in container.decode(stream):
            quarter_turns = round(frame.rotation / 90) % 4
            coded_w, coded_h = (height, width) if quarter_turns % 2 else (width, height)
            rgb = frame.reformat(
                width=coded_w, height=coded_h, format="rgb24", interpolation=SWSCALE_FLAGS
            ).to_ndarray()
            decoded.append(
                (
                    frame.pts,
                    bool(frame.key_frame),
                    np.ascontiguousarray(np.rot90(rgb, k=quarter_turns)),
                )
            )
    first_pts = min(pts for pts, _, _ in decoded)
    return sorted(
        (
            ReferenceFrame(math.ceil((pts - first_pts) * time_base * 1000), key, rgb)
            for pts, key, rgb in decoded
        ),
        key=lambda frame: frame.time_ms,
    )


def pick_reference_frames(
    frames: list[ReferenceFrame], sample_times_ms: list[int]
) -> list[ReferenceFrame]:
    """For each t, the frame on screen: greatest time <= t, else the first frame."""
    times = [frame.time_ms for frame in frames]
    return [frames[max(0, bisect.bisect_right(times, t) - 1)] for t in sample_times_ms]


def remux_with_leading_cut(source: str | Path, target: str | Path, cut_frames: int) -> None:
    """Copy a video, shifting timestamps so its first `cut_frames` frames fall before 0.

    The MP4/MOV muxer then writes an edit list that hides them (as a trimmed phone clip or a
    stream copy cut mid-GOP has): the demuxer flags those packets "discard" and the decoder
    decodes but drops them, so the visible video starts at the old frame `cut_frames`.
    """
    with av.open(str(source)) as reader, av.open(str(target), "w") as writer:
        source_stream = reader.streams.video[0]
        target_stream = writer.add_stream_from_template(source_stream)
        frame_ticks = round(1 / (source_stream.average_rate * source_stream.time_base))
        shift = cut_frames * frame_ticks
        for packet in reader.demux(source_stream):
            if packet.dts is None:
                continue
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = target_stream
            writer.mux(packet)


def make_smooth_video(
    path: str | Path,
    size: tuple[int, int] = (160, 96),
    duration_s: float = 1.0,
    fps: int = 10,
    codec: str = "h264",
    pix_fmt: str = "yuv420p",
) -> None:
    """Slowly moving smooth colour waves (like photographs: no hard edges, no noise).

    Where the swscale path and the GPU kernel path must agree to a level, content has to be
    smooth: on hard chroma edges each resampler's filter shape shows. `pix_fmt`
    "yuv420p10le" writes 10-bit (H.264 High 10 or HEVC Main 10).
    """
    width, height = size
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
    with av.open(str(path), "w") as container:
        stream = container.add_stream({"h264": "libx264", "hevc": "libx265"}[codec], rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"x265-params": "log-level=error"} if codec == "hevc" else {}
        for index in range(max(1, round(duration_s * fps))):
            shift = index * 3.0
            picture = np.stack(
                [
                    128 + 100 * np.sin((columns + shift) / 37.0 + rows / 53.0),
                    128 + 90 * np.cos((rows + shift) / 29.0),
                    128 + 80 * np.sin((columns + rows - shift) / 71.0),
                ],
                axis=-1,
            ).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format=pix_fmt)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
