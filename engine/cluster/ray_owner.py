"""Starts and stops a Ray connection from one dedicated thread that lives as long as it does.

Why a thread of its own: the processes of a local Ray (GCS, raylet) are tied to their parent
with PR_SET_PDEATHSIG, which Linux fires when the parent *thread* exits, not the process. A
server starts Ray lazily from whichever job thread asks first; when that thread ends (the
executor stopping), Ray's processes would die under the still-running driver, whose
`ray.shutdown` then hangs and aborts, leaving Ray's agents orphaned. Here the starting thread
stays parked until `stop`, and it is also the one that calls `ray.shutdown`.
"""

from __future__ import annotations

import threading
from typing import Any

import ray


class RayOwnerThread:
    """`start(**init_kwargs)` runs `ray.init` in the owner thread; `stop()` runs `ray.shutdown`
    there and lets the thread end (only after Ray's processes are gone)."""

    def __init__(self, name: str = "ray-owner") -> None:
        self._name = name
        self._started = threading.Event()
        self._release = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, **init_kwargs: Any) -> None:
        """Block until Ray is initialised; re-raise here whatever `ray.init` raised."""
        self._thread = threading.Thread(
            target=self._own, args=(init_kwargs,), name=self._name, daemon=True
        )
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def stop(self, timeout_s: float = 60.0) -> None:
        if self._thread is None:
            return
        self._release.set()
        self._thread.join(timeout=timeout_s)
        self._thread = None

    def _own(self, init_kwargs: dict) -> None:
        try:
            ray.init(**init_kwargs)
        except BaseException as error:  # noqa: BLE001 - handed to the caller of start()
            self._error = error
            self._started.set()
            return
        self._started.set()
        self._release.wait()
        if ray.is_initialized():
            ray.shutdown()
