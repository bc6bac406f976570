"""Benchmark videos: H.264, libx264 defaults (preset medium, B-frames), 2 s GOP, generated once
and kept in benchmarks/videos/ (ignored by git).

The picture is busy enough to give a realistic bitrate: moving gradients, a moving bar, a
scrolling checkerboard and light noise that changes every frame.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

VIDEO_DIR = Path(__file__).resolve().parent / "videos"
SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}


BASE_CLIP_S = 10


def bench_video(name: str, duration_s: float, fps: int = 30) -> Path:
    """Path of the benchmark video `name` (360p/720p/1080p) of `duration_s`, written if missing.

    A 10 s clip is encoded once and its closed GOPs repeated (remuxed with shifted timestamps)
    up to the duration: decoding it costs exactly what a continuously encoded file would, and
    generating a 60 s 1080p file takes one tenth of the encoding time.
    """
    width, height = SIZES[name]
    path = VIDEO_DIR / f"bench-{name}-{int(duration_s)}s.mp4"
    if path.exists():
        return path
    VIDEO_DIR.mkdir(parents=True, exist_ok=True)
    base = VIDEO_DIR / f"base-{name}-{BASE_CLIP_S}s.mp4"
    if not base.exists():
        partial = base.with_suffix(".partial.mp4")
        _write(partial, width, height, min(BASE_CLIP_S, duration_s), fps)
        partial.rename(base)
    partial = path.with_suffix(".partial.mp4")
    _loop(base, partial, duration_s)
    partial.rename(path)
    return path


def _loop(base: Path, target: Path, duration_s: float) -> None:
    """Repeat the base clip's packets, shifting pts/dts by one clip length each time."""
    with av.open(str(base)) as source, av.open(str(target), "w") as output:
        in_stream = source.streams.video[0]
        out_stream = output.add_stream_from_template(in_stream)
        packets = [packet for packet in source.demux(in_stream) if packet.size]
        frame_ticks = int(1 / (in_stream.average_rate * in_stream.time_base))
        clip_ticks = max(p.pts for p in packets) - min(p.pts for p in packets) + frame_ticks
        clip_s = float(clip_ticks * in_stream.time_base)
        repeats = max(1, round(duration_s / clip_s))
        for repeat in range(repeats):
            for packet in packets:
                copy = av.Packet(bytes(packet))
                copy.pts = packet.pts + repeat * clip_ticks
                copy.dts = packet.dts + repeat * clip_ticks
                copy.duration = packet.duration
                copy.is_keyframe = packet.is_keyframe
                copy.time_base = in_stream.time_base
                copy.stream = out_stream
                output.mux(copy)


def _write(path: Path, width: int, height: int, duration_s: float, fps: int) -> None:
    rng = np.random.default_rng(7)
    noise = rng.integers(-6, 7, size=(8, height, width, 1), dtype=np.int16)
    columns = np.arange(width, dtype=np.int32)[None, :]
    rows = np.arange(height, dtype=np.int32)[:, None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # libx264 defaults (preset medium, 3 B-frames), fixed 2 s GOP without scene-cut keyframes.
        stream.codec_context.options = {"x264-params": f"keyint={2 * fps}:min-keyint={2 * fps}:scenecut=0"}
        for index in range(int(duration_s * fps)):
            picture = _picture(index, columns, rows, width, height) + noise[index % len(noise)]
            frame = av.VideoFrame.from_ndarray(np.clip(picture, 0, 255).astype(np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _picture(index: int, columns, rows, width: int, height: int) -> np.ndarray:
    picture = np.empty((height, width, 3), np.int16)
    picture[..., 0] = (columns // 3 + index * 2) % 256
    picture[..., 1] = (rows // 2 + index) % 256
    picture[..., 2] = ((columns // 40 + rows // 40 + index // 10) % 2) * 180 + 40
    bar = (index * 9) % max(1, width - width // 10)
    picture[:, bar : bar + width // 10] = 255 - picture[:, bar : bar + width // 10]
    return picture
