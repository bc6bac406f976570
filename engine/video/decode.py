"""Decode one segment and keep, for each sample time, the frame on screen at that time.

The frame on screen at t is the decoded frame with the greatest presentation time <= t (the
first frame when none is). To find it exactly, decoding starts at the segment's keyframe and
runs forward until a frame later than the last sample time appears; taking "the first frame
after a seek" would be off by up to a GOP. Keyframes mode needs no search: its picks are the
latest keyframes of the probe's index, each decoded alone (`keyframes.py`). Chosen frames are
scaled by swscale straight to the model's input size and rotated upright, so memory holds only
small uint8 frames and one raw frame, whatever the segment or video length.

Decoding runs in software or on NVDEC (`hwdecode.py`) and within the limits of `limits.py`
(frame size, packet size, wall time), so a hostile file fails its segment instead of the worker.
Knows nothing about Ray or models: source in, FrameBatch out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import av
import numpy as np
from av.codec.hwaccel import HWAccel

from engine.video import timeline
from engine.video.hwdecode import check_hwaccel_mode, check_preprocess_mode, choose_decode_path
from engine.video.keyframes import (
    KeyframeUnavailableError,
    decode_keyframes,
    keyframe_for_each_target,
    split_into_runs,
)
from engine.video.limits import (
    DEFAULT_MAX_FRAME_PIXELS,
    Deadline,
    check_frame_size,
    check_packet_size,
    default_decode_time_limit_s,
    packet_size_limit_bytes,
)
from engine.video.nal import stream_nal_format
from engine.video.plan import sample_times_ms
from engine.video.scaling import FrameScaler, UprightScaler
from engine.video.selective import PacketSelector
from engine.video.types import FrameBatch, Segment, SegmentDecodeRequest, VideoError, VideoProbe

DECODE_MODES = ("accurate", "keyframes")
"""accurate: exact picks (every frame they depend on is decoded). keyframes: picks snap to the
latest keyframe, and only those keyframes are decoded (`keyframes.py`)."""

_SEEK_STEP_BACK_MS = (1000, 5000)
"""If a seek lands after the segment start, retry this much earlier before decoding from 0."""

_MAX_BAD_PACKETS = 16
"""Packets the decoder rejects before the whole segment is declared undecodable."""

_START_SCAN_PACKETS = 64
"""Packets read to find the first presentation time when the container does not say it."""

_MIN_KEYFRAMES_PER_WORKER = 3
"""Keyframes mode runs a second decoder (its own open, seek and thread) only for this many."""

_MAX_KEYFRAME_WORKERS = 8


class _SeekOvershot(Exception):
    """The seek landed after the first sample time: an earlier start point is needed."""


class _OutputOutOfOrder(Exception):
    """With packets skipped the decoder emitted frames out of order: decode everything instead."""


ChunkCallback = Callable[[FrameBatch], None]
"""Receives the distinct frames of a segment in order, a chunk at a time, while decoding goes on."""


def decode_sampled_frames(
    request: SegmentDecodeRequest,
    on_chunk: ChunkCallback | None = None,
    chunk_frames: int = 0,
) -> FrameBatch:
    """The frames `request` asks for, each distinct frame once (`unique_frames`).

    With `on_chunk`, every `chunk_frames` new distinct frames (and the rest at the end) are
    handed to it as soon as they are decoded, so a caller can classify them while the decoder
    goes on; the chunks, in order, are exactly the returned batch.
    """
    return unique_frames(
        decode_segment(
            request.source, request.probe, request.segment, request.sample_interval_ms,
            request.output_size, mode=request.mode, threads=request.threads,
            hwaccel=request.hwaccel, preprocess=request.preprocess,
            on_chunk=on_chunk, chunk_frames=chunk_frames,
        )
    )


def unique_frames(batch: FrameBatch) -> FrameBatch:
    """Drop repeats: two sample times can select the same frame of a low-frame-rate video."""
    keep, seen = [], set()
    for position, timestamp in enumerate(batch.timestamps_ms):
        if timestamp not in seen:
            seen.add(timestamp)
            keep.append(position)
    if len(keep) == len(batch):
        return batch
    return FrameBatch(
        frames=batch.frames[keep],
        timestamps_ms=[batch.timestamps_ms[i] for i in keep],
        sample_times_ms=[batch.sample_times_ms[i] for i in keep] if batch.sample_times_ms else [],
    )


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
    hwaccel: str = "auto",
    preprocess: str = "auto",
    time_limit_s: float | None = None,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    on_chunk: ChunkCallback | None = None,
    chunk_frames: int = 0,
) -> FrameBatch:
    """Frames on screen at each sample time of `segment`, as uint8 RGB of `output_size` = (H, W).

    `timestamps_ms` are the chosen frames' own times (ms after the first frame);
    `sample_times_ms` the grid points they were chosen for. A frame may serve several points.
    `selective` (accurate mode, H.264/HEVC closed GOPs) skips packets no picked frame depends
    on; the picks are identical, it only saves decode time. `threads` caps FFmpeg's decode
    threads (0 = one per core; give a Ray task its CPU reservation so workers do not
    oversubscribe); keyframes mode runs that many single-threaded decoders instead. `hwaccel`: "auto" decodes on NVDEC when a CUDA device opens, else in
    software; "cuda" demands NVDEC (VideoError without it); "none" is software only.
    `preprocess` ("auto", "kernel", "swscale"; engine/video/hwdecode.py) picks the scaler:
    "auto" keeps NVDEC frames on the GPU for the Triton kernel when it can.
    `time_limit_s` bounds the wall time (None: 60 s + 10 s per second of segment) and
    `max_frame_pixels` the frame size; past either, VideoError. `on_chunk` / `chunk_frames`:
    see `decode_sampled_frames` (accurate mode streams; keyframes mode hands over one chunk at
    the end).
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
    check_hwaccel_mode(hwaccel)
    check_preprocess_mode(preprocess)
    if time_limit_s is None:
        time_limit_s = default_decode_time_limit_s(segment.duration_ms)
    name = timeline.display_name(source)
    path = choose_decode_path(hwaccel, preprocess)
    settings = _DecodeSettings(
        mode=mode,
        threads=threads,
        hardware=path.hardware,
        kernel_device=path.kernel_device,
        forced_hardware=hwaccel == "cuda",
        deadline=Deadline(
            time_limit_s, f"Decoding {name} at {segment.start_ms}-{segment.stop_ms} ms"
        ),
        max_frame_pixels=max_frame_pixels,
    )
    decoder = _SegmentDecoder(source, probe, segment, targets_ms, output_size, settings)
    if on_chunk is not None:
        decoder.emitter = _ChunkEmitter(on_chunk, chunk_frames, decoder.stack)
    try:
        try:
            picks = decoder.pick(selective=selective and mode == "accurate")
        except _OutputOutOfOrder:
            picks = decoder.pick(selective=False)
    except av.error.FFmpegError as error:
        raise VideoError(
            f"Decoding {name} failed at {segment.start_ms}-{segment.stop_ms} ms "
            f"({timeline.describe_ffmpeg_error(error)}); the file is probably damaged or truncated."
        ) from error
    if decoder.emitter is not None:
        decoder.emitter.finish(picks)
    return FrameBatch(
        frames=decoder.stack([array for _, array in picks]),
        timestamps_ms=[timestamp_ms for timestamp_ms, _ in picks],
        sample_times_ms=targets_ms,
    )


@dataclass(frozen=True)
class _DecodeSettings:
    """How one segment is decoded: mode, threads, decoder device and limits."""

    mode: str
    threads: int
    hardware: HWAccel | None
    kernel_device: str | None
    """Where the kernel scaler runs ("cuda", "cpu"); None: swscale."""
    forced_hardware: bool
    deadline: Deadline
    max_frame_pixels: int


class _ChunkEmitter:
    """Hands a segment's distinct picks to a callback in chunks while the picks list grows.

    Offered the whole picks list after each new pick; a decode that restarts (a seek that
    overshot, a selective decode that fell back) rebuilds the same picks from the first, so
    picks already offered are skipped by position and nothing is handed over twice.
    """

    def __init__(self, on_chunk: ChunkCallback, chunk_frames: int, stack) -> None:
        self._on_chunk = on_chunk
        self._chunk_frames = max(1, chunk_frames)
        self._stack = stack
        self._offered = 0
        self._seen: set[int] = set()
        self._pending: list[tuple[int, object]] = []

    def offer(self, picks: list[tuple[int, object]]) -> None:
        for timestamp_ms, array in picks[self._offered :]:
            if timestamp_ms not in self._seen:  # the same rule as unique_frames
                self._seen.add(timestamp_ms)
                self._pending.append((timestamp_ms, array))
        self._offered = max(self._offered, len(picks))
        if len(self._pending) >= self._chunk_frames:
            self._send()

    def finish(self, picks: list[tuple[int, object]]) -> None:
        self.offer(picks)
        if self._pending:
            self._send()

    def _send(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self._chunk_frames):
            chunk = pending[start : start + self._chunk_frames]
            self._on_chunk(FrameBatch(
                frames=self._stack([array for _, array in chunk]),
                timestamps_ms=[timestamp_ms for timestamp_ms, _ in chunk],
            ))


class _SegmentDecoder:
    """One segment's decode: where to start, which packets to send, which frames to keep."""

    emitter: _ChunkEmitter | None = None
    """Set to stream the picks as they are found (`decode_sampled_frames`'s `on_chunk`)."""

    def __init__(self, source, probe, segment, targets_ms, output_size, settings) -> None:
        self._source = source
        self._probe = probe
        self._segment = segment
        self._targets_ms = targets_ms
        self._settings = settings
        self._output_size = output_size
        self._scaler = self._new_scaler()

    def _new_scaler(self) -> FrameScaler:
        """swscale, or the kernel scaler on the device the settings name (one per thread)."""
        rotation = self._probe.rotation_degrees
        if self._settings.kernel_device is None:
            return UprightScaler(self._output_size, rotation)
        # Imported here: it brings torch and the kernels, which swscale decoding never needs.
        from engine.video.device_scaling import KernelScaler

        return KernelScaler(self._output_size, rotation, self._settings.kernel_device)

    def stack(self, arrays: list) -> np.ndarray:
        """The picks as one (N, H, W, 3) uint8 host array (kernel picks: one download)."""
        return self._scaler.stack(arrays)

    def pick(self, selective: bool) -> list[tuple[int, np.ndarray]]:
        """Keyframes mode: jump to each needed keyframe. Otherwise, or if that fails: sequential."""
        if self._settings.mode == "keyframes":
            try:
                return self._pick_keyframes()
            except KeyframeUnavailableError:
                pass  # the sequential decode below gives the same picks, only slower
        return self._pick_sequentially(selective)

    def _pick_keyframes(self) -> list[tuple[int, np.ndarray]]:
        """Each target takes the latest keyframe of the probe's index; each is converted once.

        A keyframe is one frame, so FFmpeg's threads cannot share its decode; with `threads` > 1
        independent decoders (each its own container, on a thread: PyAV releases the GIL while
        FFmpeg decodes) take contiguous runs of the keyframes instead.
        """
        keyframe_per_target = keyframe_for_each_target(self._probe.keyframes_ms, self._targets_ms)
        runs = split_into_runs(
            sorted(set(keyframe_per_target)), self._keyframe_workers(), _MIN_KEYFRAMES_PER_WORKER
        )
        arrays: dict[int, np.ndarray] = {}
        if len(runs) == 1:
            arrays.update(self._decode_keyframe_run(runs[0], self._scaler))
        else:
            with ThreadPoolExecutor(len(runs), thread_name_prefix="keyframes") as pool:
                scalers = [self._new_scaler() for _ in runs]
                for part in pool.map(self._decode_keyframe_run, runs, scalers):
                    arrays.update(part)
        return [(keyframe_ms, arrays[keyframe_ms]) for keyframe_ms in keyframe_per_target]

    def _keyframe_workers(self) -> int:
        if self._settings.hardware is not None:
            return 1  # one NVDEC session per segment
        threads = self._settings.threads or len(os.sched_getaffinity(0))
        return max(1, min(threads, _MAX_KEYFRAME_WORKERS))

    def _decode_keyframe_run(
        self, wanted_ms: list[int], scaler: FrameScaler
    ) -> dict[int, np.ndarray]:
        """Decode (one thread) and convert the keyframes `wanted_ms` from a container of its own."""
        arrays = {}
        with self._open(threads=1) as (container, stream):
            clock = timeline.StreamClock(stream.time_base, _start_pts(container, stream))

            def guard(packets):
                return _guarded_packets(packets, stream, self._source, self._settings)

            try:
                for keyframe_ms, frame in decode_keyframes(
                    container, stream, clock, wanted_ms, self._probe.keyframes_ms, guard
                ):
                    arrays[keyframe_ms] = scaler.convert(frame)
            except KeyframeUnavailableError:
                # FFmpeg drops a keyframe over max_pixels without an error: say so, as accurate
                # mode does, rather than fall back and serve an earlier keyframe in its place.
                _refuse_grown_frames(
                    stream.codec_context, self._settings.max_frame_pixels, self._source
                )
                raise
        return arrays

    def _pick_sequentially(self, selective: bool) -> list[tuple[int, np.ndarray]]:
        """Seek near the segment start; if the seek lands too late, step back, then restart from 0."""
        start_ms = self._segment.start_ms
        seek_points_ms = [
            start_ms - step for step in (0, *_SEEK_STEP_BACK_MS) if start_ms - step > 0
        ]
        if seek_points_ms:
            with self._open() as (container, stream):
                clock = timeline.StreamClock(stream.time_base, _start_pts(container, stream))
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
            clock = timeline.StreamClock(stream.time_base, _start_pts(container, stream))
            return self._pick_frames(container, stream, clock, selective, from_start=True)

    @contextmanager
    def _open(self, threads: int | None = None):
        """The container and its video stream, decoder configured (`threads` overrides the settings)."""
        index = self._probe.stream_index
        name = timeline.display_name(self._source)
        with timeline.open_video_container(
            self._source, self._settings.hardware, self._settings.max_frame_pixels
        ) as container:
            if index >= len(container.streams) or container.streams[index].type != "video":
                raise VideoError(
                    f"{name} changed since it was probed: stream {index} is not video."
                )
            stream = container.streams[index]
            codec_context = stream.codec_context
            if codec_context is None:
                raise VideoError(
                    f"{name} changed since it was probed: its video cannot be decoded."
                )
            check_frame_size(
                codec_context.width, codec_context.height, self._settings.max_frame_pixels, name
            )
            if self._settings.forced_hardware and not codec_context.is_hwaccel:
                raise VideoError(
                    f"Hardware decoding (NVDEC) cannot decode the {codec_context.name} video of {name}."
                )
            # FFmpeg refuses to allocate bigger frames, even when the size changes mid-stream.
            codec_context.options = {"max_pixels": str(self._settings.max_frame_pixels)}
            stream.thread_type = "AUTO"
            codec_context.thread_count = self._settings.threads if threads is None else threads
            if self._settings.mode == "keyframes":
                codec_context.skip_frame = "NONKEY"
            yield container, stream

    def _pick_frames(
        self, container, stream, clock, selective, from_start
    ) -> list[tuple[int, np.ndarray]]:
        """Walk decoded frames in presentation order; each target takes the last frame at or before it."""
        targets_ms = self._targets_ms
        nal_format = stream_nal_format(stream.codec_context) if selective else None
        selector = PacketSelector(clock, targets_ms, nal_format) if nal_format else None
        picks: list[tuple[int, np.ndarray]] = []
        previous = None  # (frame_ms, raw frame, its converted array or None)
        next_target = 0
        frames = _decoded_frames(container, stream, self._source, selector, self._settings)
        for frame in frames:
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
                if self.emitter is not None:
                    self.emitter.offer(picks)
            if next_target == len(targets_ms):
                return picks
            previous = (frame_ms, frame, None)
        if previous is None:
            if not from_start:  # the seek landed past the last keyframe (MPEG-TS does this)
                raise _SeekOvershot()
            raise VideoError(
                f"No frame of {timeline.display_name(self._source)} could be decoded near {targets_ms[0]} ms."
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
    return timeline.first_frame_pts(stream, smallest)


def _decoded_frames(
    container, stream, source: str, selector: PacketSelector | None, settings: _DecodeSettings
) -> Iterator[av.VideoFrame]:
    """Frames in presentation order; a few corrupt packets are skipped like players skip them."""
    bad_packets = 0
    packets = _guarded_packets(container.demux(stream), stream, source, settings)
    if selector is not None:
        packets = selector.select(packets)
    codec_context = stream.codec_context
    for packet in packets:
        if packet.size == 0:
            continue  # end of the demuxer's output: flushed below, once
        try:
            frames = codec_context.decode(packet)
        except av.error.FFmpegError as error:
            _refuse_grown_frames(codec_context, settings.max_frame_pixels, source)
            if not isinstance(error, av.error.InvalidDataError):
                raise
            bad_packets += 1
            if bad_packets > _MAX_BAD_PACKETS:
                raise VideoError(
                    f"{timeline.display_name(source)} is too damaged to decode "
                    f"({timeline.describe_ffmpeg_error(error)} in {bad_packets} packets)."
                ) from error
            continue
        yield from _timed(frames)
    settings.deadline.check()
    yield from _timed(codec_context.decode(None))


def _refuse_grown_frames(codec_context, max_frame_pixels: int, source: str) -> None:
    """FFmpeg refuses frames over max_pixels as "invalid data"; name the real cause instead."""
    width, height = codec_context.width, codec_context.height
    if width * height > max_frame_pixels:
        check_frame_size(width, height, max_frame_pixels, timeline.display_name(source))


def _guarded_packets(
    packets, stream, source: str, settings: _DecodeSettings
) -> Iterator[av.Packet]:
    """Demuxed packets, each checked against the deadline and a believable size."""
    name = timeline.display_name(source)
    size_limit_bytes = packet_size_limit_bytes(
        stream.codec_context.width, stream.codec_context.height
    )
    for packet in packets:
        settings.deadline.check()
        check_packet_size(packet.size, size_limit_bytes, name)
        yield packet


def _timed(frames) -> Iterator[av.VideoFrame]:
    for frame in frames:
        if frame.pts is not None or frame.dts is not None:
            yield frame
