"""Dynamic batching as plain asyncio: requests from many callers become few model batches.

A `BatchingQueue` gathers frame requests until `max_batch_size` frames are waiting or
`max_wait_s` has passed since the first one, runs them as one batch in a worker thread (so the
event loop keeps accepting requests while the model runs) and hands each caller its own rows.
Each request is validated on entry, and a failing batch is retried request by request, so one
caller's bad frames never fail another caller. Nothing here knows about Ray or models.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

BatchFunction = Callable[[np.ndarray], np.ndarray]


@dataclass
class BatchingStats:
    """Counters that show how well batching works (mean batch size across all callers)."""

    batches: int = 0
    frames: int = 0
    requests: int = 0
    busy_s: float = 0.0
    batch_sizes: dict[int, int] = field(default_factory=dict)
    """How many batches ran with each size (frames): the metrics' batch-size histogram."""

    def record_batch(self, size: int, seconds: float) -> None:
        self.batches += 1
        self.frames += size
        self.busy_s += seconds
        self.batch_sizes[size] = self.batch_sizes.get(size, 0) + 1

    @property
    def mean_batch_size(self) -> float:
        return self.frames / self.batches if self.batches else 0.0

    def as_dict(self) -> dict:
        return {
            "batches": self.batches,
            "frames": self.frames,
            "requests": self.requests,
            "busy_s": round(self.busy_s, 4),
            "mean_batch_size": round(self.mean_batch_size, 3),
            "batch_sizes": dict(self.batch_sizes),
        }


class _Sink:
    """Collects one caller's rows, which may come back from several batches."""

    def __init__(self, total: int, future: asyncio.Future) -> None:
        self.future = future
        self._parts: dict[int, np.ndarray] = {}
        self._remaining = total

    def deliver(self, offset: int, rows: np.ndarray) -> None:
        self._parts[offset] = rows
        self._remaining -= len(rows)
        if self._remaining == 0 and not self.future.done():
            self.future.set_result(np.concatenate([self._parts[k] for k in sorted(self._parts)], axis=0))

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


@dataclass
class _Piece:
    """A contiguous run of one caller's frames waiting in the queue."""

    frames: np.ndarray
    sink: _Sink
    offset: int
    enqueued_at: float = field(default_factory=time.monotonic)


class BatchingQueue:
    """Collects (N_i, H, W, 3) uint8 requests into batches of at most `max_batch_size` frames."""

    def __init__(
        self,
        run_batch: BatchFunction,
        max_batch_size: int,
        max_wait_s: float,
        frame_shape: tuple[int, int, int] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self._run_batch = run_batch
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._frame_shape = frame_shape
        self._pending: list[_Piece] = []
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch")
        self.stats = BatchingStats()

    async def submit(self, frames: np.ndarray) -> np.ndarray:
        """Queue one caller's frames and wait for their rows of the model output."""
        self._validate(frames)
        if len(frames) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        loop = asyncio.get_running_loop()
        self._start(loop)
        sink = _Sink(len(frames), loop.create_future())
        self._pending.append(_Piece(frames, sink, 0))
        self.stats.requests += 1
        self._wakeup.set()
        return await sink.future

    def _validate(self, frames: np.ndarray) -> None:
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4:
            raise ValueError("frames must be a uint8 numpy array of shape (N, H, W, 3)")
        if frames.shape[-1] != 3:
            raise ValueError(f"frames must have 3 channels, got shape {frames.shape}")
        if self._frame_shape is not None and len(frames) and tuple(frames.shape[1:]) != self._frame_shape:
            raise ValueError(f"frames must be {self._frame_shape}, got {tuple(frames.shape[1:])}")

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._serve())

    async def _serve(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._wait_for_fill()
                batch = self._take_batch()
                await self._execute(batch)

    async def _wait_for_fill(self) -> None:
        """Wait until the batch is full or the oldest request has waited max_wait_s."""
        deadline = self._pending[0].enqueued_at + self._max_wait_s
        while self._queued_frames() < self._max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=remaining)
            except asyncio.TimeoutError:
                return

    def _queued_frames(self) -> int:
        return sum(len(piece.frames) for piece in self._pending)

    @property
    def queued_frames(self) -> int:
        """Frames waiting for a batch (the queue depth the metrics report)."""
        return self._queued_frames()

    def _take_batch(self) -> list[_Piece]:
        """Fill one batch exactly: the last caller's frames are split if they do not all fit,
        so frames of concurrent callers pack into full batches."""
        batch, size = [], 0
        while self._pending and size < self._max_batch_size:
            piece = self._pending[0]
            if piece.sink.future.done():  # its caller already failed: drop the rest
                self._pending.pop(0)
                continue
            room = self._max_batch_size - size
            if len(piece.frames) <= room:
                batch.append(self._pending.pop(0))
                size += len(piece.frames)
                continue
            batch.append(_Piece(piece.frames[:room], piece.sink, piece.offset, piece.enqueued_at))
            self._pending[0] = _Piece(piece.frames[room:], piece.sink, piece.offset + room, piece.enqueued_at)
            size += room
        return batch

    async def _execute(self, batch: list[_Piece]) -> None:
        if not batch:
            return
        frames = np.concatenate([piece.frames for piece in batch], axis=0)
        try:
            outputs = await self._call(frames)
        except Exception as error:  # noqa: BLE001 - handed to the caller, who decides
            if len(batch) == 1:
                batch[0].sink.fail(error)
                return
            for piece in batch:  # isolate the culprit: one bad caller fails only itself
                await self._execute([piece])
            return
        offset = 0
        for piece in batch:
            piece.sink.deliver(piece.offset, outputs[offset : offset + len(piece.frames)])
            offset += len(piece.frames)

    async def _call(self, frames: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        outputs = await loop.run_in_executor(self._executor, self._run_batch, frames)
        outputs = np.asarray(outputs)
        if outputs.shape[0] != frames.shape[0]:
            raise ValueError(f"batch function returned {outputs.shape[0]} rows for {frames.shape[0]} frames")
        self.stats.record_batch(len(frames), time.perf_counter() - started)
        return outputs
