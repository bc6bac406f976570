"""Read the NAL unit headers of H.264 and HEVC packets: which pictures are references, IDRs, leading.

Selective decode (`selective.py`) may skip a packet only when its NAL headers prove no other
picture needs it. This module only parses: length-prefixed packets (AVCC/HVCC, as stored in
MP4, MOV and MKV) and Annex-B packets (start codes, as in MPEG-TS). Anything that does not
parse cleanly, or uses syntax not handled here (H.264 data partitioning and SVC/MVC
extensions, HEVC layers and reserved picture types), returns None: the caller then decodes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ANNEX_B = 0
"""`length_size` value meaning "NAL units are separated by start codes", not length-prefixed."""

_H264_SLICE = 1
_H264_IDR_SLICE = 5
_H264_UNHANDLED = frozenset({2, 3, 4, 20, 21})
"""Data partitions and SVC/MVC slice extensions: their reference rules are not modelled here."""

_HEVC_FIRST_NON_VCL = 32
_HEVC_IDR_TYPES = frozenset({19, 20})  # IDR_W_RADL, IDR_N_LP
_HEVC_IDR_WITH_LEADING = 19
_HEVC_LEADING_TYPES = frozenset({6, 7, 8, 9})  # RADL_N, RADL_R, RASL_N, RASL_R
_HEVC_RESERVED_VCL = frozenset(range(22, 32))  # RSV_IRAP_VCL22/23 and RSV_VCL24..31
_HEVC_SUB_LAYER_NON_REFERENCE = frozenset({0, 2, 4, 6, 8, 10, 12, 14})
"""TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, RSV_VCL_N10/12/14: no picture of the same temporal
sub-layer references them (pictures of higher sub-layers still may)."""


@dataclass(frozen=True)
class NalFormat:
    """How a stream's packets carry NAL units: codec and prefix size."""

    codec: Literal["h264", "hevc"]
    length_size: int
    """1, 2 or 4 bytes of big-endian NAL length before each unit; ANNEX_B (0) for start codes."""


@dataclass(frozen=True)
class PacketKind:
    """What the picture NAL headers of one packet (one access unit) say."""

    is_reference: bool
    """Some picture of the same temporal sub-layer may reference it (H.264: nal_ref_idc != 0)."""
    is_idr: bool
    """An instantaneous decoder refresh: no later picture references anything before it."""
    temporal_id: int = 0
    """HEVC temporal sub-layer (0 for H.264)."""
    is_leading: bool = False
    """HEVC RADL/RASL: follows an IRAP picture in decode order but is shown before it."""
    may_have_leading: bool = False
    """HEVC IDR_W_RADL: decodable leading pictures may follow it."""


def stream_nal_format(codec_context) -> NalFormat | None:
    """The NAL packaging of an H.264 or HEVC stream, read from its extradata; None for other codecs."""
    codec = codec_context.name
    if codec not in ("h264", "hevc"):
        return None
    extradata = bytes(codec_context.extradata or b"")
    if not extradata or extradata.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        return NalFormat(codec, ANNEX_B)  # parameter sets in-band or as start-code units
    if codec == "h264" and len(extradata) >= 7 and extradata[0] == 1:
        return NalFormat(codec, (extradata[4] & 0x03) + 1)  # avcC lengthSizeMinusOne
    if codec == "hevc" and len(extradata) >= 23 and extradata[0] == 1:
        return NalFormat(codec, (extradata[21] & 0x03) + 1)  # hvcC lengthSizeMinusOne
    return None


def inspect_packet(data: bytes, nal_format: NalFormat) -> PacketKind | None:
    """The kind of one packet in `nal_format`; None when it does not parse cleanly."""
    if nal_format.codec == "h264":
        return inspect_h264_packet(data, nal_format.length_size)
    return inspect_hevc_packet(data, nal_format.length_size)


def nal_header_offsets(data: bytes, length_size: int) -> list[int] | None:
    """Offsets of each NAL unit's first header byte; None when the packet is malformed."""
    if length_size == ANNEX_B:
        return _annex_b_offsets(data)
    offsets = []
    position, end = 0, len(data)
    while position < end:
        header_at = position + length_size
        if header_at >= end:
            return None
        nal_size = int.from_bytes(data[position:header_at], "big")
        if nal_size == 0 or header_at + nal_size > end:
            return None
        offsets.append(header_at)
        position = header_at + nal_size
    return offsets or None


def _annex_b_offsets(data: bytes) -> list[int] | None:
    """Units start after each 00 00 01; only zero bytes may precede the first start code."""
    offsets = []
    position = data.find(b"\x00\x00\x01")
    if position < 0 or data[:position].strip(b"\x00"):
        return None
    while position >= 0:
        header_at = position + 3
        if header_at >= len(data):
            break  # a trailing start code with nothing after it
        offsets.append(header_at)
        position = data.find(b"\x00\x00\x01", header_at)
    return offsets or None


def inspect_h264_packet(data: bytes, length_size: int) -> PacketKind | None:
    """Slice NAL headers of an H.264 packet: nal_ref_idc and IDR type."""
    offsets = nal_header_offsets(data, length_size)
    if offsets is None:
        return None
    saw_slice = is_reference = is_idr = False
    for header_at in offsets:
        header = data[header_at]
        if header & 0x80:
            return None  # forbidden_zero_bit set: damaged
        nal_type = header & 0x1F
        if nal_type in (_H264_SLICE, _H264_IDR_SLICE):
            saw_slice = True
            is_reference |= (header >> 5) & 0x03 != 0
            is_idr |= nal_type == _H264_IDR_SLICE
        elif nal_type in _H264_UNHANDLED:
            return None
    if not saw_slice:
        return None
    return PacketKind(is_reference=is_reference, is_idr=is_idr)


def inspect_hevc_packet(data: bytes, length_size: int) -> PacketKind | None:
    """Slice NAL headers of an HEVC packet: picture type and temporal sub-layer."""
    offsets = nal_header_offsets(data, length_size)
    if offsets is None:
        return None
    picture_types: set[int] = set()
    temporal_ids: set[int] = set()
    for header_at in offsets:
        if header_at + 2 > len(data):
            return None
        first, second = data[header_at], data[header_at + 1]
        nal_type = (first >> 1) & 0x3F
        layer_id = ((first & 0x01) << 5) | (second >> 3)
        temporal_id_plus1 = second & 0x07
        if first & 0x80 or temporal_id_plus1 == 0:
            return None  # forbidden bit set or an invalid temporal id: damaged
        if nal_type >= _HEVC_FIRST_NON_VCL:
            continue  # parameter sets, SEI, delimiters: no picture
        if layer_id != 0 or nal_type in _HEVC_RESERVED_VCL:
            return None
        picture_types.add(nal_type)
        temporal_ids.add(temporal_id_plus1 - 1)
    if not picture_types or len(temporal_ids) != 1:
        return None
    return PacketKind(
        is_reference=not picture_types <= _HEVC_SUB_LAYER_NON_REFERENCE,
        is_idr=bool(picture_types & _HEVC_IDR_TYPES),
        temporal_id=temporal_ids.pop(),
        is_leading=bool(picture_types & _HEVC_LEADING_TYPES),
        may_have_leading=_HEVC_IDR_WITH_LEADING in picture_types,
    )
