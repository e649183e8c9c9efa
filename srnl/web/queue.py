"""One job at a time, first come first served: the CPU is the bottleneck, and two restorations
side by side would each take twice as long and hold twice the memory. Every job's state (its
place in the queue, tiles done) can be read by id while it waits or runs, and a job whose client
has gone away leaves the queue, or stops at its next tile."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import SrnlError
from ..runtime import release_freed_memory

T = TypeVar("T")
POLL_SECONDS = 0.25


class Cancelled(Exception):
    """The client went away or the server is stopping: the job's work ends at its next tile.
    Not an SrnlError, so that it is not taken for one bad file and passes through."""


class QueueFull(SrnlError):
    pass


@dataclass
class JobState:
    running: bool = False
    done: int = 0
    total: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)

    def on_tile(self, done: int, total: int) -> None:
        if self.cancel.is_set():
            raise Cancelled
        self.done, self.total = done, total


class JobQueue:
    def __init__(self, max_waiting: int = 32):
        self.max_waiting = max_waiting
        self._turn = asyncio.Lock()  # fair: waiters acquire it in arrival order
        self._jobs: dict[str, JobState] = {}
        self._order: list[str] = []  # the running job first, then those waiting
        self._running: asyncio.Future | None = None
        self._closed = False

    def progress(self, job_id: str) -> dict | None:
        state = self._jobs.get(job_id)
        if state is None:
            return None
        if state.running:
            return {"state": "running", "done": state.done, "total": state.total}
        return {"state": "queued", "position": self._order.index(job_id)}

    async def run(self, job_id: str, work: Callable[[Callable[[int, int], None]], T],
                  gone: Callable[[], Awaitable[bool]]) -> T:
        """`work(on_tile)` in a worker thread when its turn comes; `gone()` says whether the client
        has disconnected. Raises Cancelled if it has, QueueFull if too many wait already."""
        if self._closed:
            raise Cancelled
        if job_id in self._jobs:
            raise SrnlError(f"{job_id!r} is already queued or running", option="job")
        if len(self._order) > self.max_waiting:
            raise QueueFull(f"busy: {len(self._order)} images are queued or running; try again later")
        state = self._jobs[job_id] = JobState()
        self._order.append(job_id)
        watcher = asyncio.create_task(self._watch(state, gone, asyncio.current_task()))
        try:
            async with self._turn:
                if state.cancel.is_set():
                    raise Cancelled
                state.running = True
                self._running = asyncio.ensure_future(asyncio.to_thread(work, state.on_tile))
                try:
                    return await asyncio.shield(self._running)
                except asyncio.CancelledError:
                    # The turn passes on only once the thread has ended.
                    state.cancel.set()
                    await asyncio.wait([self._running])
                    raise
        except asyncio.CancelledError:
            raise Cancelled from None
        finally:
            watcher.cancel()
            self._order.remove(job_id)
            del self._jobs[job_id]
            if not self._order:
                # Idle: the memory the jobs freed goes back (not between jobs, which reuse it).
                release_freed_memory()

    async def _watch(self, state: JobState, gone: Callable[[], Awaitable[bool]],
                     job: asyncio.Task) -> None:
        while not await gone():
            await asyncio.sleep(POLL_SECONDS)
        state.cancel.set()
        if not state.running:
            job.cancel()  # leaves the queue without ever taking the turn

    def stop(self) -> None:
        """Refuse new jobs and cancel every one (a running one at its next tile); callable from a
        signal handler, so that a stopping server has no job left to wait for."""
        self._closed = True
        for state in list(self._jobs.values()):
            state.cancel.set()

    async def close(self) -> None:
        """Stop, and wait for the running job's thread to end."""
        self.stop()
        if self._running is not None:
            await asyncio.wait([self._running])
