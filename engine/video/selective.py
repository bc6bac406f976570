"""Choose which compressed packets a segment decode must send: the picked frames and their references.

At one sample per second most decoded frames are thrown away. In a GOP that starts at an IDR
and is followed by an IDR (a closed GOP), a frame that is not picked and that no other frame
references never needs decoding, nor does anything after the last picked frame in decode
order. Skipping those packets gives pixel-identical picks for less work; the decode tests
compare every pick with a brute-force full decode.

"No other frame references it" is read from NAL headers (`nal.py`): H.264 slices with
nal_ref_idc 0; HEVC sub-layer non-reference pictures (TRAIL_N, RADL_N, ...) of the highest
temporal sub-layer in the GOP (lower sub-layer ones may still be referenced by higher ones).

Anything this module cannot prove safe passes through unchanged: other codecs, open GOPs
(non-IDR keyframes, whose leading frames may reference the previous GOP), packets without
timestamps or with NAL syntax not handled. Knows packets and NAL headers only; no decoding.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

import av

from engine.video.nal import NalFormat, PacketKind, inspect_packet
from engine.video.timeline import StreamClock

MAX_BUFFERED_GOP_BYTES = 64 * 1024 * 1024
"""A GOP is buffered (compressed) to choose its packets; longer ones are decoded in full."""


class PacketSelector:
    """Filters one segment's packets GOP by GOP (a GOP's compressed packets are buffered)."""

    def __init__(self, clock: StreamClock, targets_ms: list[int], nal_format: NalFormat) -> None:
        self._clock = clock
        self._targets_ms = targets_ms
        self._nal_format = nal_format
        self.sent_packets = 0
        self.seen_packets = 0

    def select(self, packets: Iterable[av.Packet]) -> Iterator[av.Packet]:
        """Yield the packets worth decoding; stops once every target's frame has been sent."""
        gop: list[av.Packet] = []
        gop_bytes = 0
        streaming = False  # this GOP outgrew the buffer: pass it through as it comes
        stop_unless_leading = False  # past the last target, unless leading pictures follow
        for packet in packets:
            if packet.size == 0:
                continue  # the caller flushes the decoder itself
            if stop_unless_leading:
                kind = self._kind(packet)
                if kind is not None and not kind.is_leading:
                    return
                stop_unless_leading = False  # a leading picture may be on screen at a target
            if packet.is_keyframe and (gop or streaming):
                next_kind = self._kind(packet)
                if gop:
                    yield from self._count(self._select_gop(gop, packet, next_kind))
                gop, gop_bytes, streaming = [], 0, False
                if self._all_targets_before(packet, next_kind):
                    if not next_kind.may_have_leading:
                        return
                    stop_unless_leading = True
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
            yield from self._count(self._select_gop(gop, None, None))

    def _kind(self, packet: av.Packet) -> PacketKind | None:
        return inspect_packet(bytes(packet), self._nal_format)

    def _all_targets_before(self, keyframe: av.Packet, kind: PacketKind | None) -> bool:
        """After an IDR nothing earlier is decoded or shown, so targets before it are settled."""
        return (
            kind is not None
            and kind.is_idr
            and keyframe.pts is not None
            and self._targets_ms[-1] < self._pts_ms(keyframe)
        )

    def _count(self, chosen: list[av.Packet]) -> list[av.Packet]:
        self.sent_packets += len(chosen)
        return chosen

    def _select_gop(
        self, gop: list[av.Packet], next_keyframe, next_kind: PacketKind | None
    ) -> list[av.Packet]:
        """The GOP's packets in decode order, less those no picked frame depends on.

        `next_keyframe` None means the stream ends after this GOP (nothing can reference it).
        """
        self.seen_packets += len(gop)
        kinds = [self._kind(p) for p in gop]
        closed_after = next_keyframe is None or (next_kind is not None and next_kind.is_idr)
        safe = (
            closed_after
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
        top_sub_layer = max(kind.temporal_id for kind in kinds)
        return [
            packet
            for index, (packet, kind) in enumerate(zip(gop, kinds))
            if index <= last_needed
            and (index in picked or kind.is_reference or kind.temporal_id < top_sub_layer)
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
