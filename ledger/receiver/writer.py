"""Group commit into the spool: many requests, one write + one fsync, each answered after its own fsync.

Request handlers ``submit`` an encoded OTLP/JSON line and await the returned future. One writer thread
takes everything waiting in the queue (up to ``max_batch_bytes``), appends it to the spool file in one
write, syncs once, and only then resolves every future of that batch. So a 200 always means "on disk",
and under load the cost of an fsync is shared by all requests that arrived while the previous one ran.

The queue is bounded: when it is full, ``submit`` raises :class:`Saturated` at once and the handler
answers 503 + Retry-After, so the client keeps the spans and retries (never accepted, then lost). The app's
admission slots normally keep it from filling; this is the net under them.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from collector.spool import SpoolWriter

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 16 * 1024 * 1024


class Saturated(Exception):
    """No room for another request (admission slots taken, writer queue full or closed): 503 + Retry-After."""


@dataclass
class _Lines:
    data: bytes
    future: Future[None] = field(default_factory=Future)


@dataclass
class _Stop:
    pass


_Job = _Lines | _Stop


class GroupCommitWriter:
    """A writer thread that appends submitted lines to the spool with group commit."""

    def __init__(
        self,
        spool_dir: Path,
        *,
        queue_size: int = 64,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        sync: Callable[[int], None] = os.fsync,
    ) -> None:
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=queue_size)
        self._max_batch_bytes = max_batch_bytes
        self._spool = SpoolWriter(spool_dir, sync=sync)
        self._thread = threading.Thread(target=self._run, name="imagecost-spool-writer", daemon=True)
        self._closed = False
        self.commits = 0  # write + sync rounds
        self.lines = 0
        self.bytes = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, line: bytes) -> Future[None]:
        """Queue lines without waiting; the future resolves once they are durable (or fails with OSError)."""
        if self._closed:
            raise Saturated("the spool writer is shutting down")
        job = _Lines(line)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Saturated("the spool writer queue is full") from None
        return job.future

    def close(self, timeout: float = 60.0) -> None:
        """Write what is queued, seal the current file, stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._thread.ident is None:  # never started (the receiver failed to bind)
            return
        self._queue.put(_Stop(), timeout=timeout)
        self._thread.join(timeout)

    def stats(self) -> dict[str, int]:
        return {"commits": self.commits, "lines": self.lines, "bytes": self.bytes, "queued": self._queue.qsize()}

    def _run(self) -> None:
        pending: _Job | None = None
        while True:
            job = pending or self._queue.get()
            pending = None
            if isinstance(job, _Stop):
                self._seal()
                return
            batch, pending = self._gather(job)
            self._commit(batch)

    def _gather(self, first: _Lines) -> tuple[list[_Lines], _Job | None]:
        """``first`` plus every line job already waiting; stops at the stop job (returned to run next)."""
        batch = [first]
        size = len(first.data)
        while size < self._max_batch_bytes:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if not isinstance(job, _Lines):
                return batch, job
            batch.append(job)
            size += len(job.data)
        return batch, None

    def _commit(self, batch: list[_Lines]) -> None:
        data = b"".join(job.data for job in batch)
        try:
            self._spool.append(data)
        except Exception as exc:
            if not isinstance(exc, OSError):
                log.exception("spool writer failed")
                exc = OSError(f"spool writer failed: {exc}")
            for job in batch:
                job.future.set_exception(exc)
            return
        self.commits += 1
        self.lines += len(batch)
        self.bytes += len(data)
        for job in batch:
            job.future.set_result(None)

    def _seal(self) -> None:
        try:
            self._spool.seal()
        except OSError as exc:  # its lines are fsync'd: ingest reads a .part file of a stopped writer too
            log.error("could not seal the spool file: %s", exc)
