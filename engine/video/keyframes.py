"""Keyframes-mode decode: jump to each keyframe a segment needs and decode that one packet alone.

In keyframes mode the pick for sample time t is the latest keyframe at or before t, and the
probe already knows every keyframe's presentation time. So the frames needed are known before
anything is decoded: each is found by a seek (or by reading on when it is the very next
keyframe) and decoded from its own packet, then the decoder is drained and reset. The GOP's
other packets are never sent to the decoder, and a decoder holds one raw frame at a time.

Measured on a 60 s 720p H.264 MP4 (2 s GOPs, 30 keyframes): seeking to every keyframe and
demuxing up to it took 5 ms in all, demuxing every packet 19 ms (MPEG-TS: 34 and 27 ms),
decoding the 30 keyframes about 250 ms; whole segment decodes with either rule were within 3%.
Demuxing costs next to nothing, so the rule is the one that keeps reads sequential (fewer
requests on an object store): read on to an adjacent keyframe, seek over skipped ones.

Each decoder runs on one FFmpeg thread: a single frame cannot be spread over frame threads,
and draining a frame-threaded decoder per keyframe made it ~1.5x slower (slice threads do not
help the usual one-slice streams either). To use more cores the caller runs several decoders,
each on a contiguous run of the keyframes (`split_into_runs`).

Anything unexpected (a keyframe packet not where the probe said, a decoder that emits no frame
or another one, an FFmpeg error) raises KeyframeUnavailableError; the caller then decodes the
segment the sequential way, which is always correct, so picks never depend on this shortcut.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import pairwise

import av

from engine.video.timeline import StreamClock

PacketGuard = Callable[[Iterable[av.Packet]], Iterator[av.Packet]]
"""Wraps demuxed packets with the caller's checks (deadline, packet size)."""


class KeyframeUnavailableError(Exception):
    """A needed keyframe could not be decoded on its own: decode the segment sequentially."""


def keyframe_for_each_target(keyframes_ms: Sequence[int], targets_ms: Sequence[int]) -> list[int]:
    """For each target, the latest keyframe at or before it (the first keyframe when none is)."""
    ordered = sorted(keyframes_ms)
    if not ordered:
        raise KeyframeUnavailableError("the probe lists no keyframe")
    return [ordered[max(0, bisect.bisect_right(ordered, t) - 1)] for t in targets_ms]


def split_into_runs(wanted_ms: Sequence[int], workers: int, min_per_run: int) -> list[list[int]]:
    """Split into at most `workers` contiguous runs of nearly equal length, each >= `min_per_run`.

    Contiguous runs keep each decoder reading forward through adjacent keyframes.
    """
    count = max(1, min(workers, len(wanted_ms) // max(1, min_per_run)))
    bounds = [round(index * len(wanted_ms) / count) for index in range(count + 1)]
    return [list(wanted_ms[a:b]) for a, b in pairwise(bounds)]


def decode_keyframes(
    container,
    stream,
    clock: StreamClock,
    wanted_ms: Sequence[int],
    index_ms: Sequence[int],
    guard: PacketGuard,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield (keyframe ms, decoded frame) for each of `wanted_ms` (distinct, ascending).

    `index_ms` is the probe's keyframe list, used to tell an adjacent keyframe (read on) from
    a distant one (seek). The stream's decoder must already skip non-key frames.
    """
    reader = _KeyframeReader(container, stream, clock, guard)
    ordered_index = sorted(index_ms)
    previous_ms = None
    for keyframe_ms in wanted_ms:
        read_on = previous_ms is not None and _adjacent(ordered_index, previous_ms, keyframe_ms)
        packet = reader.find_keyframe_packet(keyframe_ms, read_on)
        yield keyframe_ms, _decode_alone(stream.codec_context, packet, clock, keyframe_ms)
        previous_ms = keyframe_ms


def _adjacent(ordered_index: Sequence[int], earlier_ms: int, later_ms: int) -> bool:
    """True when no keyframe of the index lies strictly between the two."""
    position = bisect.bisect_right(ordered_index, earlier_ms)
    return position >= len(ordered_index) or ordered_index[position] >= later_ms


class _KeyframeReader:
    """Finds keyframe packets by reading on or seeking, never decoding on the way.

    MP4/MOV/MKV seek through their index straight to the keyframe. MPEG-TS has no index and
    seeks by decode timestamp to any packet, so a seek to a keyframe's presentation time lands
    just after it (its B-frames have earlier decode times); then the seek is retried earlier,
    and that margin is kept for the following seeks.
    """

    def __init__(self, container, stream, clock: StreamClock, guard: PacketGuard) -> None:
        self._container = container
        self._stream = stream
        self._clock = clock
        self._guard = guard
        self._packets: Iterator[av.Packet] | None = None
        self._first_margin = 0  # index into _SEEK_MARGINS_MS of the margin that last worked

    def find_keyframe_packet(self, keyframe_ms: int, read_on: bool) -> av.Packet:
        """The keyframe packet shown at `keyframe_ms`; `read_on` tries the current position first."""
        if read_on and self._packets is not None:
            packet = self._read_to(keyframe_ms)
            if packet is not None:
                return packet
        for margin_index in range(self._first_margin, len(_SEEK_MARGINS_MS)):
            self._seek(keyframe_ms - _SEEK_MARGINS_MS[margin_index])
            packet = self._read_to(keyframe_ms)
            if packet is not None:
                self._first_margin = margin_index
                return packet
        raise KeyframeUnavailableError(f"no keyframe packet at {keyframe_ms} ms")

    def _seek(self, time_ms: int) -> None:
        target_pts = self._clock.latest_pts_at_or_before(time_ms)
        try:
            self._container.seek(target_pts, stream=self._stream, backward=True)
        except av.error.FFmpegError as error:
            raise KeyframeUnavailableError(f"seeking to {time_ms} ms failed: {error}") from error
        self._packets = self._guard(self._container.demux(self._stream))

    def _read_to(self, keyframe_ms: int) -> av.Packet | None:
        """Demux on to the keyframe packet at `keyframe_ms`; None once past it or at the end."""
        try:
            for packet in self._packets:
                if not packet.is_keyframe or packet.pts is None or packet.size == 0:
                    continue
                packet_ms = self._clock.to_ms(packet.pts)
                if packet_ms == keyframe_ms and not packet.is_discard:
                    return packet
                if packet_ms > keyframe_ms:
                    return None  # past it: the seek overshot, or the index does not match
        except av.error.FFmpegError as error:  # damaged data: the sequential path reports it
            raise KeyframeUnavailableError(f"reading to {keyframe_ms} ms failed: {error}") from error
        return None


_SEEK_MARGINS_MS = (0, 1000, 5000)
"""How far before a keyframe to seek: exactly to it first, earlier when a seek overshoots."""


def _decode_alone(codec_context, packet: av.Packet, clock: StreamClock, keyframe_ms: int):
    """Decode one keyframe packet, drain the decoder (codecs with delay hold the frame), reset it."""
    try:
        frames = [*codec_context.decode(packet), *codec_context.decode(None)]
        codec_context.flush_buffers()
    except av.error.FFmpegError as error:
        raise KeyframeUnavailableError(f"keyframe at {keyframe_ms} ms: {error}") from error
    timed = [frame for frame in frames if frame.pts is not None or frame.dts is not None]
    if len(timed) != 1:
        raise KeyframeUnavailableError(f"{len(timed)} frames from the keyframe at {keyframe_ms} ms")
    frame = timed[0]
    if clock.to_ms(frame.pts if frame.pts is not None else frame.dts) != keyframe_ms:
        raise KeyframeUnavailableError(f"the keyframe at {keyframe_ms} ms came out at another time")
    return frame
