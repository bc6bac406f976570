"""The batching queue, without Ray: batches across callers, keeps order, isolates bad input."""

import asyncio

import numpy as np
import pytest

from engine.cluster.batching import BatchingQueue


def frames(n, value=0, size=4):
    return np.full((n, size, size, 3), value, dtype=np.uint8)


def mean_model(batch: np.ndarray) -> np.ndarray:
    return batch.reshape(len(batch), -1).mean(axis=1, keepdims=True).astype(np.float32)


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_callers_share_batches_and_get_their_own_rows():
    async def scenario():
        queue = BatchingQueue(mean_model, max_batch_size=16, max_wait_s=0.05)
        results = await asyncio.gather(*(queue.submit(frames(3, value=v)) for v in range(5)))
        return queue, results

    queue, results = run(scenario())
    for value, rows in enumerate(results):
        assert rows.shape == (3, 1)
        assert np.all(rows == value)
    assert queue.stats.frames == 15
    assert queue.stats.batches == 1
    assert queue.stats.mean_batch_size == 15


def test_large_request_is_split_at_max_batch_size_and_reassembled_in_order():
    async def scenario():
        queue = BatchingQueue(mean_model, max_batch_size=4, max_wait_s=0.0)
        batch = np.stack([np.full((4, 4, 3), v, dtype=np.uint8) for v in range(10)])
        return queue, await queue.submit(batch)

    queue, rows = run(scenario())
    assert rows[:, 0].tolist() == list(range(10))
    assert queue.stats.batches == 3


def test_bad_frames_are_refused_before_batching():
    async def scenario():
        queue = BatchingQueue(mean_model, max_batch_size=8, max_wait_s=0.0, frame_shape=(4, 4, 3))
        with pytest.raises(ValueError):
            await queue.submit(np.zeros((1, 4, 4, 3), dtype=np.float32))
        with pytest.raises(ValueError):
            await queue.submit(frames(1, size=5))
        return await queue.submit(frames(2, value=7))

    assert np.all(run(scenario()) == 7)


def test_a_request_that_breaks_the_model_fails_only_its_caller():
    def picky_model(batch):
        if np.any(batch == 13):
            raise RuntimeError("model cannot handle 13")
        return mean_model(batch)

    async def scenario():
        queue = BatchingQueue(picky_model, max_batch_size=32, max_wait_s=0.05)
        return await asyncio.gather(
            queue.submit(frames(2, value=1)),
            queue.submit(frames(2, value=13)),
            queue.submit(frames(2, value=3)),
            return_exceptions=True,
        )

    good1, bad, good3 = run(scenario())
    assert np.all(good1 == 1) and np.all(good3 == 3)
    assert isinstance(bad, RuntimeError)


def test_wrong_row_count_from_the_model_is_an_error():
    async def scenario():
        queue = BatchingQueue(lambda b: np.zeros((1, 1)), max_batch_size=8, max_wait_s=0.0)
        await queue.submit(frames(3))

    with pytest.raises(ValueError):
        run(scenario())



def test_frames_of_concurrent_callers_pack_into_full_batches():
    async def scenario():
        queue = BatchingQueue(mean_model, max_batch_size=16, max_wait_s=0.05)
        results = await asyncio.gather(*(queue.submit(frames(20, value=v)) for v in range(3)))
        return queue, results

    queue, results = run(scenario())
    for value, rows in enumerate(results):
        assert rows.shape == (20, 1) and np.all(rows == value)
    # 60 frames in batches of 16, 16, 16, 12: the callers' tails share batches
    assert queue.stats.batches == 4 and queue.stats.mean_batch_size == 15
