"""Decode one segment and keep, for each sample time, the frame on screen at that time.

The frame on screen at t is the decoded frame with the greatest presentation time <= t (the
first frame when none is). To find it exactly, decoding starts at the segment's keyframe and
runs forward until a frame later than the last sample time appears; taking "the first frame
after a seek" would be off by up to a GOP. Chosen frames are scaled by swscale straight to the
model's input size and rotated upright, so memory holds only small uint8 frames and one raw
frame, whatever the segment or video length.

Knows nothing about Ray or models: source in, FrameBatch out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import av
import numpy as np

from engine.video.plan import sample_times_ms
from engine.video.selective import PacketSelector, avcc_length_size
from engine.video.timeline import StreamClock, display_name, first_frame_pts, open_video_container
from engine.video.types import FrameBatch, Segment, VideoError, VideoProbe

DECODE_MODES = ("accurate", "keyframes")
"""accurate: every frame is decoded, exact picks. keyframes: only keyframes, picks snap to them."""

_SEEK_STEP_BACK_MS = (1000, 5000)
"""If a seek lands after the segment start, retry this much earlier before decoding from 0."""

_MAX_BAD_PACKETS = 16
"""Packets the decoder rejects before the whole segment is declared undecodable."""

_START_SCAN_PACKETS = 64
"""Packets read to find the first presentation time when the container does not say it."""


class _SeekOvershot(Exception):
    """The seek landed after the first sample time: an earlier start point is needed."""


class _OutputOutOfOrder(Exception):
    """With packets skipped the decoder emitted frames out of order: decode everything instead."""


def decode_segment(
    source: str,
    probe: VideoProbe,
    segment: Segment,
    sample_interval_ms: int,
    output_size: tuple[int, int],
    mode: str = "accurate",
    *,
    selective: bool = True,
    threads: int = 0,
) -> FrameBatch:
    """Frames on screen at each sample time of `segment`, as uint8 RGB of `output_size` = (H, W).

    `timestamps_ms` are the chosen frames' own times (ms after the first frame);
    `sample_times_ms` the grid points they were chosen for. A frame may serve several points.
    `selective` (accurate mode, H.264 closed GOPs) skips packets no picked frame depends on;
    the picks are identical, it only saves decode time. `threads` caps FFmpeg's decode threads
    (0 = one per core; give a Ray task its CPU reservation so workers do not oversubscribe).
    """
    if mode not in DECODE_MODES:
        raise ValueError(f"mode must be one of {DECODE_MODES}, got {mode!r}")
    height, width = output_size
    if height <= 0 or width <= 0:
        raise ValueError(f"output_size must be positive (height, width), got {output_size}")
    targets_ms = sample_times_ms(segment, sample_interval_ms, probe.metadata.duration_ms)
    if not targets_ms:
        return FrameBatch(np.empty((0, height, width, 3), np.uint8), [], [])
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    decoder = _SegmentDecoder(source, probe, segment, targets_ms, output_size, mode, threads)
    try:
        try:
            picks = decoder.pick(selective=selective and mode == "accurate")
        except _OutputOutOfOrder:
            picks = decoder.pick(selective=False)
    except av.error.FFmpegError as error:
        raise VideoError(
            f"Decoding {display_name(source)} failed in {segment.start_ms}-{segment.stop_ms} ms: {error}"
        ) from error
    return FrameBatch(
        frames=np.stack([array for _, array in picks]),
        timestamps_ms=[timestamp_ms for timestamp_ms, _ in picks],
        sample_times_ms=targets_ms,
    )


class _SegmentDecoder:
    """One segment's decode: where to start, which packets to send, which frames to keep."""

    def __init__(self, source, probe, segment, targets_ms, output_size, mode, threads) -> None:
        self._source = source
        self._probe = probe
        self._segment = segment
        self._targets_ms = targets_ms
        self._mode = mode
        self._threads = threads
        self._scaler = _UprightScaler(output_size, probe.rotation_degrees)

    def pick(self, selective: bool) -> list[tuple[int, np.ndarray]]:
        """Seek near the segment start; if the seek lands too late, step back, then restart from 0."""
        start_ms = self._segment.start_ms
        seek_points_ms = [
            start_ms - step for step in (0, *_SEEK_STEP_BACK_MS) if start_ms - step > 0
        ]
        if seek_points_ms:
            with self._open() as (container, stream):
                clock = StreamClock(stream.time_base, _start_pts(container, stream))
                for seek_ms in seek_points_ms:
                    container.seek(
                        clock.latest_pts_at_or_before(seek_ms), stream=stream, backward=True
                    )
                    try:
                        return self._pick_frames(
                            container, stream, clock, selective, from_start=False
                        )
                    except _SeekOvershot:
                        continue
        # From the very start of a freshly opened container: always correct, only slower.
        with self._open() as (container, stream):
            clock = StreamClock(stream.time_base, _start_pts(container, stream))
            return self._pick_frames(container, stream, clock, selective, from_start=True)

    @contextmanager
    def _open(self):
        index = self._probe.stream_index
        with open_video_container(self._source) as container:
            if index >= len(container.streams) or container.streams[index].type != "video":
                raise VideoError(
                    f"{display_name(self._source)} changed since it was probed: stream {index} is not video."
                )
            stream = container.streams[index]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = self._threads
            if self._mode == "keyframes":
                stream.codec_context.skip_frame = "NONKEY"
            yield container, stream

    def _pick_frames(
        self, container, stream, clock, selective, from_start
    ) -> list[tuple[int, np.ndarray]]:
        """Walk decoded frames in presentation order; each target takes the last frame at or before it."""
        targets_ms = self._targets_ms
        length_size = avcc_length_size(stream.codec_context) if selective else None
        selector = PacketSelector(clock, targets_ms, length_size) if length_size else None
        picks: list[tuple[int, np.ndarray]] = []
        previous = None  # (frame_ms, raw frame, its converted array or None)
        next_target = 0
        for frame in _decoded_frames(container, stream, self._source, selector):
            frame_ms = clock.to_ms(frame.pts if frame.pts is not None else frame.dts)
            if previous is None and frame_ms > targets_ms[0] and not from_start:
                raise _SeekOvershot()
            if selector is not None and previous is not None and frame_ms < previous[0]:
                raise _OutputOutOfOrder()
            while next_target < len(targets_ms) and targets_ms[next_target] < frame_ms:
                if previous is None:  # nothing shown before the first decodable frame: use it
                    previous = (frame_ms, frame, None)
                previous = self._with_array(previous)
                picks.append((previous[0], previous[2]))
                next_target += 1
            if next_target == len(targets_ms):
                return picks
            previous = (frame_ms, frame, None)
        if previous is None:
            raise VideoError(
                f"No frame of {display_name(self._source)} could be decoded near {targets_ms[0]} ms."
            )
        previous = self._with_array(previous)
        picks.extend((previous[0], previous[2]) for _ in targets_ms[next_target:])
        return picks

    def _with_array(self, entry: tuple) -> tuple:
        frame_ms, frame, array = entry
        return entry if array is not None else (frame_ms, frame, self._scaler.convert(frame))


def _start_pts(container, stream) -> int:
    """Same rule as the probe (timeline.first_frame_pts), reading only the first packets if needed."""
    if stream.start_time is not None:
        return stream.start_time
    smallest = None
    for count, packet in enumerate(container.demux(stream)):
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is not None and packet.size and not packet.is_discard:
            smallest = pts if smallest is None else min(smallest, pts)
        if count >= _START_SCAN_PACKETS:
            break
    if smallest is None:
        raise VideoError("The video contains no frames.")
    container.seek(smallest, stream=stream, backward=True)
    return first_frame_pts(stream, smallest)


def _decoded_frames(
    container, stream, source: str, selector: PacketSelector | None
) -> Iterator[av.VideoFrame]:
    """Frames in presentation order; a few corrupt packets are skipped like players skip them."""
    bad_packets = 0
    packets = container.demux(stream)
    if selector is not None:
        packets = selector.select(packets)
    codec_context = stream.codec_context
    for packet in packets:
        if packet.size == 0:
            continue  # end of the demuxer's output: flushed below, once
        try:
            frames = codec_context.decode(packet)
        except av.error.InvalidDataError as error:
            bad_packets += 1
            if bad_packets > _MAX_BAD_PACKETS:
                raise VideoError(
                    f"{display_name(source)} is too damaged to decode: {error}"
                ) from error
            continue
        yield from _timed(frames)
    yield from _timed(codec_context.decode(None))


def _timed(frames) -> Iterator[av.VideoFrame]:
    for frame in frames:
        if frame.pts is not None or frame.dts is not None:
            yield frame


class _UprightScaler:
    """Scales a decoded frame to (height, width) RGB with swscale, then rotates it upright.

    For 90/270 degree rotation the coded picture is scaled to the swapped size first, so the
    rotated result has exactly the requested (height, width).
    """

    def __init__(self, output_size: tuple[int, int], rotation_degrees: int) -> None:
        self._height, self._width = output_size
        self._quarter_turns = (rotation_degrees // 90) % 4
        self._reformatter = av.video.reformatter.VideoReformatter()

    def convert(self, frame: av.VideoFrame) -> np.ndarray:
        if self._quarter_turns % 2:
            coded_width, coded_height = self._height, self._width
        else:
            coded_width, coded_height = self._width, self._height
        scaled = self._reformatter.reformat(
            frame, width=coded_width, height=coded_height, format="rgb24", interpolation="BILINEAR"
        )
        array = scaled.to_ndarray()
        if self._quarter_turns:
            # np.rot90 turns counter-clockwise, the display-matrix convention of the probe.
            array = np.rot90(array, k=self._quarter_turns)
        return np.ascontiguousarray(array)
