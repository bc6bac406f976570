"""decode_sampled_frames hands its frames over in chunks while decoding: the chunks, in order,
are exactly the batch it returns, each distinct frame once, never more than `chunk_frames`."""

from __future__ import annotations

import numpy as np
import pytest

from engine.video import (
    FrameBatch,
    SegmentDecodeRequest,
    decode_sampled_frames,
    plan_segments,
    probe_video,
)
from engine.video.decode import _ChunkEmitter
from tests.media import make_pattern_video

OUTPUT_SIZE = (24, 40)


def _request(path, probe, segment, interval_ms, mode="accurate") -> SegmentDecodeRequest:
    return SegmentDecodeRequest(
        source=str(path), probe=probe, segment=segment, sample_interval_ms=interval_ms,
        output_size=OUTPUT_SIZE, mode=mode, threads=1, hwaccel="none", preprocess="swscale",
    )


def _decode_in_chunks(request, chunk_frames):
    chunks: list[FrameBatch] = []
    batch = decode_sampled_frames(request, on_chunk=chunks.append, chunk_frames=chunk_frames)
    return batch, chunks


@pytest.mark.parametrize("mode", ["accurate", "keyframes"])
@pytest.mark.parametrize("chunk_frames", [1, 3, 1000])
def test_chunks_in_order_are_the_returned_batch(tmp_path, mode, chunk_frames):
    path = tmp_path / "p.mp4"
    make_pattern_video(path, duration_s=4.0, fps=30, size=(72, 40), gop_s=1.0)
    probe = probe_video(str(path))
    for segment in plan_segments(probe, 2000):
        request = _request(path, probe, segment, 150, mode)
        batch, chunks = _decode_in_chunks(request, chunk_frames)
        unchunked = decode_sampled_frames(request)
        assert batch.timestamps_ms == unchunked.timestamps_ms
        assert np.array_equal(batch.frames, unchunked.frames)
        assert [t for chunk in chunks for t in chunk.timestamps_ms] == batch.timestamps_ms
        assert np.array_equal(np.concatenate([chunk.frames for chunk in chunks]), batch.frames)
        assert all(1 <= len(chunk) <= chunk_frames for chunk in chunks)
        if mode == "accurate":  # streamed as found: every chunk but the last is full
            assert all(len(chunk) == chunk_frames for chunk in chunks[:-1])


def test_a_frame_serving_several_sample_times_is_sent_once(tmp_path):
    path = tmp_path / "slow.mp4"
    make_pattern_video(path, duration_s=3.0, fps=2, size=(48, 32), gop_s=1.0)
    probe = probe_video(str(path))
    request = _request(path, probe, plan_segments(probe, 10**9)[0], 100)
    batch, chunks = _decode_in_chunks(request, 2)
    sent = [t for chunk in chunks for t in chunk.timestamps_ms]
    assert sent == batch.timestamps_ms and len(set(sent)) == len(sent) == 6


def test_a_restarted_decode_hands_nothing_over_twice():
    chunks: list[FrameBatch] = []
    emitter = _ChunkEmitter(chunks.append, 2, np.stack)
    frame = np.zeros((2, 2, 3), np.uint8)
    first_try = [(0, frame), (40, frame), (80, frame)]
    emitter.offer(first_try[:2])
    emitter.offer(first_try)
    # the decoder fell back and found the same picks again from the first one
    for count in range(1, 5):
        emitter.offer([*first_try, (120, frame)][:count])
    emitter.finish([*first_try, (120, frame)])
    assert [chunk.timestamps_ms for chunk in chunks] == [[0, 40], [80, 120]]
