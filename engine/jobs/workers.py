"""A fixed set of daemon threads working through one queue: the job executor's workers, the
adapter trainings and the media analysis jobs all run on one (the last two through
QueuedWorkService, which gives them the same start/stop/wait).

An item that raises is logged and the thread goes on, so one bad job or training never costs
a worker. `wait_idle` tells tests and the demo when nothing is queued or running.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

_STOP = object()


class WorkerPool:
    """`count` threads named `name-N`, each handing the next queued item to `handle`."""

    def __init__(self, handle: Callable[[object], None], name: str) -> None:
        self._handle = handle
        self._name = name
        self._queue: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Condition()
        self._busy = 0

    def start(self, count: int, resume: Iterable[object] = ()) -> None:
        """Start the threads, first queueing `resume`: the work a stopped server left
        unfinished (each logged, so an operator sees what a restart picked up again)."""
        for item in resume:
            log.info("%s: resuming %s", self._name, item)
            self._queue.put(item)
        for number in range(count):
            thread = threading.Thread(target=self._work, name=f"{self._name}-{number}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def put(self, item: object) -> None:
        self._queue.put(item)

    def stop(self) -> None:
        """Each thread ends after the item it is on; queued items stay unhandled."""
        for _ in self._threads:
            self._queue.put(_STOP)
        self._threads = []

    def alive(self) -> tuple[int, int]:
        """(alive, started) threads."""
        return sum(thread.is_alive() for thread in self._threads), len(self._threads)

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no item is queued or being handled; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0 and self._queue.empty(),
                                       timeout=timeout_s)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            with self._idle:
                self._busy += 1
            try:
                self._handle(item)
            except Exception:  # a worker thread must outlive any bug in one item
                log.exception("%s worker failed on %s", self._name, item)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()


class QueuedWorkService:
    """A service whose work items run on its own WorkerPool (adapter trainings, media jobs).

    A subclass names its pool and thread count and says, in `unfinished_work`, what a stopped
    server left to do; starting, stopping and waiting are the same for all of them.
    """

    def __init__(self, handle: Callable[[object], None], name: str, count: int) -> None:
        self._work_pool = WorkerPool(handle, name)
        self._work_count = count

    def unfinished_work(self) -> Iterable[object]:
        """The items to queue again at start: what a stopped server was still working on."""
        return ()

    def start(self) -> None:
        self._work_pool.start(self._work_count, resume=self.unfinished_work())

    def stop(self) -> None:
        self._work_pool.stop()

    def wait_idle(self, timeout_s: float) -> bool:
        return self._work_pool.wait_idle(timeout_s)

    def queue_work(self, item: object) -> None:
        self._work_pool.put(item)
