"""Choose which compressed packets a segment decode must send: the picked frames and their references.

At one sample per second most decoded frames are thrown away. In an H.264 GOP that starts at
an IDR and is followed by an IDR (a closed GOP), a frame that is not picked and that no other
frame references (every slice has nal_ref_idc 0) never needs decoding, nor does anything after
the last picked frame in decode order. Skipping those packets gives pixel-identical picks for
less work; the decode tests compare every pick with a brute-force full decode.

Anything this module cannot prove safe passes through unchanged: other codecs, Annex-B
packets, open GOPs (non-IDR keyframes, whose leading frames may reference the previous GOP),
packets without timestamps. Knows packets and NAL headers only; no decoding, no Ray.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import av

from engine.video.timeline import StreamClock

MAX_BUFFERED_GOP_BYTES = 64 * 1024 * 1024
"""A GOP is buffered (compressed) to choose its packets; longer ones are decoded in full."""

_H264_SLICE = 1
_H264_IDR_SLICE = 5


@dataclass(frozen=True)
class H264PacketKind:
    """What the slice NAL headers of one packet say."""

    is_reference: bool
    is_idr: bool


def avcc_length_size(codec_context) -> int | None:
    """NAL length-prefix size of an H.264 stream in AVCC form (MP4/MOV/MKV), else None."""
    if codec_context.name != "h264":
        return None
    extradata = codec_context.extradata or b""
    if len(extradata) < 7 or extradata[0] != 1:
        return None  # Annex-B start codes: not parsed here
    return (extradata[4] & 0x03) + 1


def inspect_h264_packet(data: bytes, length_size: int) -> H264PacketKind | None:
    """Read the NAL headers of a length-prefixed packet; None when it does not parse cleanly."""
    position, end = 0, len(data)
    saw_slice = is_reference = is_idr = False
    while position + length_size < end:
        nal_size = int.from_bytes(data[position : position + length_size], "big")
        header_at = position + length_size
        if nal_size == 0 or header_at + nal_size > end:
            return None
        header = data[header_at]
        nal_type = header & 0x1F
        if nal_type in (_H264_SLICE, _H264_IDR_SLICE):
            saw_slice = True
            is_reference |= (header >> 5) & 0x03 != 0
            is_idr |= nal_type == _H264_IDR_SLICE
        elif nal_type in (2, 3, 4, 20, 21):  # data partitions / extensions: be conservative
            return None
        position = header_at + nal_size
    if not saw_slice or position != end:
        return None
    return H264PacketKind(is_reference=is_reference, is_idr=is_idr)


class PacketSelector:
    """Filters one segment's packets GOP by GOP (a GOP's compressed packets are buffered)."""

    def __init__(self, clock: StreamClock, targets_ms: list[int], length_size: int) -> None:
        self._clock = clock
        self._targets_ms = targets_ms
        self._length_size = length_size
        self.sent_packets = 0
        self.seen_packets = 0

    def select(self, packets: Iterable[av.Packet]) -> Iterator[av.Packet]:
        """Yield the packets worth decoding; stops once every target's frame has been sent."""
        gop: list[av.Packet] = []
        gop_bytes = 0
        streaming = False  # this GOP outgrew the buffer: pass it through as it comes
        for packet in packets:
            if packet.size == 0:
                continue  # the caller flushes the decoder itself
            if packet.is_keyframe and (gop or streaming):
                next_is_idr = self._is_idr(packet)
                if gop:
                    yield from self._count(self._select_gop(gop, packet, next_is_idr))
                if self._all_targets_before(packet, next_is_idr):
                    return
                gop, gop_bytes, streaming = [], 0, False
            if streaming:
                self.seen_packets += 1
                yield from self._count([packet])
                continue
            gop.append(packet)
            gop_bytes += packet.size
            if gop_bytes > MAX_BUFFERED_GOP_BYTES:
                self.seen_packets += len(gop)
                yield from self._count(gop)
                gop, streaming = [], True
        if gop:
            yield from self._count(self._select_gop(gop, None, True))

    def _all_targets_before(self, keyframe: av.Packet, is_idr: bool) -> bool:
        """After an IDR nothing earlier is shown, so targets before it are all settled."""
        return is_idr and keyframe.pts is not None and self._targets_ms[-1] < self._pts_ms(keyframe)

    def _count(self, chosen: list[av.Packet]) -> list[av.Packet]:
        self.sent_packets += len(chosen)
        return chosen

    def _select_gop(
        self, gop: list[av.Packet], next_keyframe, next_is_idr: bool
    ) -> list[av.Packet]:
        self.seen_packets += len(gop)
        kinds = [inspect_h264_packet(bytes(p), self._length_size) for p in gop]
        safe = (
            next_is_idr
            and gop[0].is_keyframe
            and all(kind is not None for kind in kinds)
            and kinds[0].is_idr
            and all(p.pts is not None for p in gop)
            and (next_keyframe is None or next_keyframe.pts is not None)
        )
        if not safe:
            return gop
        picked = self._picked_indices(gop, next_keyframe)
        if not picked:
            return []
        last_needed = max(picked)
        return [
            packet
            for index, (packet, kind) in enumerate(zip(gop, kinds))
            if index <= last_needed and (index in picked or kind.is_reference)
        ]

    def _picked_indices(self, gop: list[av.Packet], next_keyframe) -> set[int]:
        """Indices (decode order) of the frames on screen at the targets inside this GOP."""
        visible = sorted(
            (self._pts_ms(p), index) for index, p in enumerate(gop) if not p.is_discard
        )
        if not visible:
            return set()
        times_ms = [time_ms for time_ms, _ in visible]
        stop_ms = self._pts_ms(next_keyframe) if next_keyframe is not None else None
        picked = set()
        first = bisect.bisect_left(self._targets_ms, times_ms[0])
        for target_ms in self._targets_ms[first:]:
            if stop_ms is not None and target_ms >= stop_ms:
                break
            picked.add(visible[bisect.bisect_right(times_ms, target_ms) - 1][1])
        return picked

    def _pts_ms(self, packet: av.Packet) -> int:
        return self._clock.to_ms(packet.pts)

    def _is_idr(self, packet: av.Packet) -> bool:
        kind = inspect_h264_packet(bytes(packet), self._length_size)
        return kind is not None and kind.is_idr
