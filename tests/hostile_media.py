"""A corpus of hostile and broken media files, each with the outcome the engine must produce.

`build_corpus(directory)` writes every file and returns `HostileCase`s. An outcome is one of:
- PLAYABLE: the file is in fact a video; probe and every segment's decode must succeed;
- REJECTED: probe or decode must raise VideoError matching `message_pattern`;
- EITHER: damaged but partly readable; frames, or a VideoError matching `message_pattern`.

"Supported codec" means what the engine accepts: any video codec the bundled FFmpeg can
decode (H.264, HEVC, VP9, AV1, MPEG-4 Part 2, MJPEG, PNG, ...). So an MJPEG video is PLAYABLE,
and the unsupported-codec case is a track whose codec FFmpeg has no decoder for (an unknown
sample-entry fourcc).

Files are derived from small generated videos (tests/media.py) by byte surgery: cutting,
overwriting, patching box fields and the H.264 SPS. Sparse files (`truncate`) cost no disk.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from tests.media import make_pattern_video

PLAYABLE, REJECTED, EITHER = "playable", "rejected", "either"

SPARSE_SIZE_BYTES = 11 * 1024**3
"""11 GiB: bigger than any buffer, never written (a hole in a sparse file)."""


CORPUS_NAMES = (
    "zero_bytes",
    "random_bytes",
    "shopping_list",
    "moov_at_end",
    "moov_at_front",
    "moov_at_end_cut_in_mdat",
    "moov_at_front_cut_in_moov",
    "moov_at_front_cut_at_40pct",
    "moov_at_front_cut_at_75pct",
    "moov_at_front_cut_at_97pct",
    "corrupt_mdat",
    "audio_only",
    "huge_frame_size_12288x12288",
    "huge_frame_size_30000x30000",
    "unknown_codec",
    "zero_frames_mp4",
    "zero_frames_mkv",
    "raw_annex_b",
    "mjpeg",
    "sparse_11gb_zeros",
    "sparse_11gb_tail",
    "huge_packet",
)
"""Every case `build_corpus` writes, in order (known before building, for test ids)."""


@dataclass(frozen=True)
class HostileCase:
    name: str
    path: Path
    outcome: str
    message_pattern: str = ""
    """Regular expression the VideoError message must match (REJECTED and EITHER)."""


def build_corpus(directory: str | Path) -> list[HostileCase]:
    """Write every hostile file into `directory` (about 1 MB of real disk) and describe it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / "base.mp4"  # moov at the end, as PyAV/FFmpeg write it by default
    make_pattern_video(base, duration_s=3.0, fps=30, size=(96, 64), gop_s=1.0)
    faststart = directory / "faststart.mp4"  # moov before mdat
    _remux(base, faststart, {"movflags": "faststart"})
    data, front = base.read_bytes(), faststart.read_bytes()
    not_readable = r"not a video file FFmpeg can read, or it is damaged"
    cases = [
        _write(directory, "zero_bytes.mp4", b"", REJECTED, r"is empty \(0 bytes\)"),
        _write(
            directory,
            "random_bytes.mp4",
            np.random.default_rng(11).bytes(256 * 1024),
            REJECTED,
            not_readable,
        ),
        _write(
            directory,
            "shopping_list.mp4",
            b"eggs, milk, bread, a new video card\n" * 200,
            REJECTED,
            not_readable,
        ),
        HostileCase("moov_at_end", base, PLAYABLE),
        HostileCase("moov_at_front", faststart, PLAYABLE),
        _write(
            directory,
            "moov_at_end_cut_in_mdat.mp4",
            data[: _box_offset(data, b"moov") // 2],
            REJECTED,
            not_readable,
        ),
        _write(
            directory,
            "moov_at_front_cut_in_moov.mp4",
            front[: _box_offset(front, b"moov") + 200],
            REJECTED,
            r"has no video stream",
        ),
        *[
            _write(
                directory,
                f"moov_at_front_cut_at_{percent}pct.mp4",
                front[: len(front) * percent // 100],
                EITHER,
                r"damaged|truncated|cannot be read",
            )
            for percent in (40, 75, 97)
        ],
        _corrupt_mdat(directory, data),
        _audio_only(directory),
        _huge_frame_size(directory, base, 12288, 12288, r"12288x12288 pixels; at most"),
        # FFmpeg itself refuses an SPS this large: the stream then has no usable size.
        _huge_frame_size(directory, base, 30000, 30000, r"has no frame size"),
        _unknown_codec(directory, data),
        _without_frames(directory, "mp4"),
        _without_frames(directory, "mkv"),
        _raw_annex_b(directory, base),
        _mjpeg(directory),
        _sparse_zeros(directory),
        _sparse_tail(directory, front),
        _huge_packet(directory, front),
    ]
    assert tuple(case.name for case in cases) == CORPUS_NAMES
    return cases


def _write(
    directory: Path, name: str, content: bytes, outcome: str, pattern: str = ""
) -> HostileCase:
    path = directory / name
    path.write_bytes(content)
    return HostileCase(Path(name).stem, path, outcome, pattern)


def _remux(source: Path, target: Path, options: dict[str, str] | None = None) -> None:
    """Copy the video packets into a new file (container options, e.g. faststart, applied)."""
    with av.open(str(source)) as reader, av.open(str(target), "w", options=options or {}) as writer:
        source_stream = reader.streams.video[0]
        target_stream = writer.add_stream_from_template(source_stream)
        for packet in reader.demux(source_stream):
            if packet.dts is None:
                continue
            packet.stream = target_stream
            writer.mux(packet)


def _box_offset(data: bytes, box_type: bytes) -> int:
    """Offset of a top-level MP4 box (walks the box sizes, so payload bytes never match)."""
    position = 0
    while position + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind == box_type:
            return position
        if size == 1:
            size = struct.unpack(">Q", data[position + 8 : position + 16])[0]
        if size < 8:
            break
        position += size
    raise ValueError(f"no top-level {box_type!r} box")


def _corrupt_mdat(directory: Path, data: bytes) -> HostileCase:
    """Random bytes written over 30 places in the middle half of the media data."""
    damaged = bytearray(data)
    mdat = _box_offset(data, b"mdat")
    moov = _box_offset(data, b"moov")
    generator = np.random.default_rng(21)
    for position in generator.integers(
        mdat + (moov - mdat) // 4, mdat + (moov - mdat) * 3 // 4, 30
    ):
        damaged[position : position + 48] = generator.bytes(48)
    return _write(directory, "corrupt_mdat.mp4", bytes(damaged), EITHER, r"damaged|truncated")


def _audio_only(directory: Path) -> HostileCase:
    path = directory / "podcast.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for index in range(30):
            samples = np.sin(np.arange(1024, dtype=np.float32) / 7 + index)[None, :] * 0.3
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return HostileCase("audio_only", path, REJECTED, r"has no video stream \(it contains: audio\)")


def _unknown_codec(directory: Path, data: bytes) -> HostileCase:
    """The avc1 sample entry renamed to a fourcc no FFmpeg decoder claims."""
    moov = _box_offset(data, b"moov")
    entry = data.index(b"avc1", moov)
    patched = data[:entry] + b"zzzz" + data[entry + 4 :]
    return _write(
        directory, "unknown_codec.mp4", patched, REJECTED, r"video codec .*is not supported"
    )


def _without_frames(directory: Path, suffix: str) -> HostileCase:
    """A header declaring a video track, and no frame (MP4 then drops the track on reading)."""
    path = directory / f"hollow.{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height = 64, 48
        container.start_encoding()
    pattern = {
        "mp4": r"has no video stream \(it contains no streams at all\)",
        "mkv": r"ends before any video data",
    }[suffix]
    return HostileCase(f"zero_frames_{suffix}", path, REJECTED, pattern)


def _raw_annex_b(directory: Path, base: Path) -> HostileCase:
    """A bare .h264 elementary stream (start codes, no container, no timestamps)."""
    path = directory / "camera.h264"
    with av.open(str(base)) as reader, av.open(str(path), "w", format="h264") as writer:
        source_stream = reader.streams.video[0]
        target_stream = writer.add_stream_from_template(source_stream)
        for packet in reader.demux(source_stream):
            if packet.dts is not None:
                packet.stream = target_stream
                writer.mux(packet)
    return HostileCase(
        "raw_annex_b",
        path,
        REJECTED,
        r"raw H\.264 elementary stream without timestamps.*MP4 or MOV",
    )


def _mjpeg(directory: Path) -> HostileCase:
    """A codec other than H.264/HEVC that FFmpeg decodes: accepted, so it must play."""
    path = directory / "webcam.mov"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for index in range(20):
            picture = np.full((48, 64, 3), (index * 12, 200, 40), np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return HostileCase("mjpeg", path, PLAYABLE)


def _sparse_zeros(directory: Path) -> HostileCase:
    path = directory / "eleven_gigabytes_of_nothing.mp4"
    with open(path, "wb") as handle:
        handle.truncate(SPARSE_SIZE_BYTES)
    return HostileCase(
        "sparse_11gb_zeros", path, REJECTED, r"not a video file FFmpeg can read|no video"
    )


def _sparse_tail(directory: Path, front: bytes) -> HostileCase:
    """A real (faststart) video followed by an 11 GiB hole: must play without reading the hole."""
    path = directory / "video_then_hole.mp4"
    with open(path, "wb") as handle:
        handle.write(front)
        handle.truncate(SPARSE_SIZE_BYTES)
    return HostileCase("sparse_11gb_tail", path, PLAYABLE)


def _huge_packet(directory: Path, front: bytes) -> HostileCase:
    """One sample-size entry claims 100 MB; the file is extended (sparse) so the read succeeds."""
    data = bytearray(front)
    stsz = data.index(b"stsz")
    first_entry = stsz + 4 + 4 + 4 + 4  # type, version/flags, sample_size, sample_count
    data[first_entry + 4 * 5 : first_entry + 4 * 6] = struct.pack(">I", 100_000_000)
    path = directory / "huge_packet.mp4"
    with open(path, "wb") as handle:
        handle.write(data)
        handle.truncate(len(data) + 200_000_000)
    return HostileCase("huge_packet", path, REJECTED, r"packet of \d+ bytes")


def _huge_frame_size(
    directory: Path, base: Path, width: int, height: int, pattern: str
) -> HostileCase:
    """Sample entry and H.264 SPS rewritten to declare width x height (the slices stay 96x64)."""
    path = directory / f"huge_frames_{width}x{height}.mp4"
    with av.open(str(base)) as reader, av.open(str(path), "w") as writer:
        source_stream = reader.streams.video[0]
        target_stream = writer.add_stream_from_template(source_stream)
        target_stream.codec_context.extradata = _avcc_with_size(
            bytes(source_stream.codec_context.extradata), width, height
        )
        for packet in reader.demux(source_stream):
            if packet.dts is not None:
                packet.stream = target_stream
                writer.mux(packet)
    data = bytearray(path.read_bytes())
    entry = data.index(b"avc1", _box_offset(bytes(data), b"moov"))
    data[entry + 28 : entry + 32] = struct.pack(">HH", width, height)  # VisualSampleEntry size
    path.write_bytes(bytes(data))
    return HostileCase(f"huge_frame_size_{width}x{height}", path, REJECTED, pattern)


def _avcc_with_size(avcc: bytes, width: int, height: int) -> bytes:
    """An avcC record whose single SPS declares width x height (multiples of 16)."""
    if avcc[5] & 0x1F != 1:
        raise ValueError("expected exactly one SPS")
    sps_length = int.from_bytes(avcc[6:8], "big")
    sps = avcc[8 : 8 + sps_length]
    new_sps = _sps_with_size(sps, width, height)
    return avcc[:6] + len(new_sps).to_bytes(2, "big") + new_sps + avcc[8 + sps_length :]


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def _sps_with_size(sps_nal: bytes, width: int, height: int) -> bytes:
    """Re-encode an H.264 SPS (as libx264 writes it) with a new size and no cropping."""
    reader = _BitReader(_unescape(sps_nal[1:]))
    writer = _BitWriter()
    for _ in range(3):  # profile_idc, constraint flags, level_idc
        writer.bits(reader.bits(8), 8)
    profile = int.from_bytes(sps_nal[1:2], "big")
    writer.ue(reader.ue())  # seq_parameter_set_id
    if profile in _HIGH_PROFILES:
        chroma_format = reader.ue()
        writer.ue(chroma_format)
        if chroma_format == 3:
            writer.bits(reader.bits(1), 1)
        writer.ue(reader.ue())  # bit_depth_luma_minus8
        writer.ue(reader.ue())  # bit_depth_chroma_minus8
        writer.bits(reader.bits(1), 1)  # qpprime_y_zero_transform_bypass_flag
        if reader.bits(1):
            raise ValueError("scaling matrices are not handled")
        writer.bits(0, 1)
    writer.ue(reader.ue())  # log2_max_frame_num_minus4
    poc_type = reader.ue()
    writer.ue(poc_type)
    if poc_type == 0:
        writer.ue(reader.ue())
    elif poc_type == 1:
        raise ValueError("pic_order_cnt_type 1 is not handled")
    writer.ue(reader.ue())  # max_num_ref_frames
    writer.bits(reader.bits(1), 1)  # gaps_in_frame_num_value_allowed_flag
    reader.ue(), reader.ue()  # the old size in macroblocks
    writer.ue(width // 16 - 1)
    if not reader.peek_frame_mbs_only():
        raise ValueError("interlaced SPS is not handled")
    writer.ue(height // 16 - 1)
    writer.bits(reader.bits(1), 1)  # frame_mbs_only_flag
    writer.bits(reader.bits(1), 1)  # direct_8x8_inference_flag
    if reader.bits(1):  # frame_cropping_flag: drop the cropping
        for _ in range(4):
            reader.ue()
    writer.bits(0, 1)
    reader.copy_rest_without_trailing_bits(writer)
    writer.bits(1, 1)  # rbsp_stop_one_bit, then byte alignment
    return sps_nal[:1] + _escape(writer.to_bytes())


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self._bits = "".join(f"{byte:08b}" for byte in data)
        self._position = 0

    def bits(self, count: int) -> int:
        value = int(self._bits[self._position : self._position + count] or "0", 2)
        self._position += count
        return value

    def ue(self) -> int:
        zeros = 0
        while self._bits[self._position] == "0":
            zeros += 1
            self._position += 1
        self._position += 1
        return (1 << zeros) - 1 + self.bits(zeros)

    def peek_frame_mbs_only(self) -> bool:
        """The flag right after pic_height_in_map_units_minus1 (already consumed)."""
        return self._bits[self._position] == "1"

    def copy_rest_without_trailing_bits(self, writer: _BitWriter) -> None:
        rest = self._bits[self._position :].rstrip("0")[:-1]  # drop stop bit and padding
        for bit in rest:
            writer.bits(int(bit), 1)


class _BitWriter:
    def __init__(self) -> None:
        self._bits: list[str] = []

    def bits(self, value: int, count: int) -> None:
        self._bits.append(format(value, f"0{count}b") if count else "")

    def ue(self, value: int) -> None:
        code = format(value + 1, "b")
        self._bits.append("0" * (len(code) - 1) + code)

    def to_bytes(self) -> bytes:
        text = "".join(self._bits)
        text += "0" * (-len(text) % 8)
        return int(text, 2).to_bytes(len(text) // 8, "big")


def _unescape(payload: bytes) -> bytes:
    return payload.replace(b"\x00\x00\x03", b"\x00\x00")


def _escape(payload: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for byte in payload:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)
