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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

BatchFunction = Callable[[np.ndarray], np.ndarray]


@dataclass
class BatchingStats:
    """Counters that show how well batching works (mean batch size across all callers)."""

    batches: int = 0
    frames: int = 0
    requests: int = 0
    busy_s: float = 0.0

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
        }


@dataclass
class _Request:
    frames: np.ndarray
    future: asyncio.Future
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
        self._pending: list[_Request] = []
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
        parts = [frames[i : i + self._max_batch_size] for i in range(0, len(frames), self._max_batch_size)]
        futures = []
        for part in parts:
            request = _Request(part, loop.create_future())
            self._pending.append(request)
            futures.append(request.future)
        self.stats.requests += 1
        self._wakeup.set()
        results = await asyncio.gather(*futures)
        return np.concatenate(results, axis=0)

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
        return sum(len(request.frames) for request in self._pending)

    def _take_batch(self) -> list[_Request]:
        batch, size = [], 0
        while self._pending and size + len(self._pending[0].frames) <= self._max_batch_size:
            request = self._pending.pop(0)
            batch.append(request)
            size += len(request.frames)
        return batch

    async def _execute(self, batch: list[_Request]) -> None:
        frames = np.concatenate([request.frames for request in batch], axis=0)
        try:
            outputs = await self._call(frames)
        except Exception as error:  # noqa: BLE001 - handed to the caller, who decides
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(error)
                return
            for request in batch:  # isolate the culprit: one bad request fails only itself
                await self._execute([request])
            return
        offset = 0
        for request in batch:
            rows = outputs[offset : offset + len(request.frames)]
            offset += len(request.frames)
            if not request.future.done():
                request.future.set_result(rows)

    async def _call(self, frames: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        outputs = await loop.run_in_executor(self._executor, self._run_batch, frames)
        outputs = np.asarray(outputs)
        if outputs.shape[0] != frames.shape[0]:
            raise ValueError(f"batch function returned {outputs.shape[0]} rows for {frames.shape[0]} frames")
        self.stats.batches += 1
        self.stats.frames += len(frames)
        self.stats.busy_s += time.perf_counter() - started
        return outputs
