"""The spool: a durable, many-writer directory of OTLP/JSON lines files, fed by ``SpoolSpanExporter``.

Layout (shared with ``imagecost ingest``, which is the only reader)::

    <spool>/<host>-<pid>-<start>-<seq>.jsonl.part   being written by one process (exactly one writer)
    <spool>/<host>-<pid>-<start>-<seq>.jsonl        sealed: renamed at rotation or shutdown, never written again
    <spool>/done/                                   files ingest has fully consumed
    <spool>/rejected/                               copies of lines ingest could not read
    <spool>/.ingest.lock                            held (flock) by the running ingest

Every export is one ``write()`` of one line (one ``ExportTraceServiceRequest``) on an ``O_APPEND`` file
descriptor followed by ``fsync``, so when ``export`` returns SUCCESS the spans are on disk, and a reader
never sees half a line except as an unterminated tail (which it leaves for later). Each process writes its
own file, so writers never interleave; threads of one process share the file under a lock.

A failure to write (disk full, unwritable directory, ...) never reaches the application: ``export``
returns FAILURE, logs once per streak of failures, and counts the lost spans in the
``imagecost.telemetry.dropped`` counter.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry import metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from collector import semconv
from collector.otlp_json import encode_request_json_line
from collector.spool_layout import (  # noqa: F401 (re-exported: the layout's names are used from here too)
    DONE_DIR,
    LOCK_FILE,
    PART_SUFFIX,
    REJECTED_DIR,
    SEALED_SUFFIX,
    SpoolName,
    host_label,
    sealed_path,
    spool_dir,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_AGE_S = 300.0


class SpoolWriter:
    """This process's current ``.jsonl.part`` file: append whole lines + fsync, rotate by size or age, seal.

    ``append`` raises ``OSError`` when the data is not on disk, after cutting the file back so it only
    ever holds whole lines. Not thread-safe: ``SpoolSpanExporter`` guards it with a lock; the OTLP/HTTP
    receiver drives it from its single writer thread. ``sync`` defaults to ``os.fsync``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        sync: Callable[[int], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._sync = sync
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._opened_at = 0.0
        self._new_writer()

    def _new_writer(self) -> None:
        self._name = SpoolName(host_label(), os.getpid(), datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ"), 0)

    @property
    def path(self) -> Path | None:
        """The ``.jsonl.part`` file being written, if one is open."""
        return self._path

    def append(self, data: bytes) -> None:
        """Write ``data`` (whole lines) with one ``write`` and fsync it; ``OSError`` if it is not on disk."""
        if self._fd is not None and self._due_for_rotation(len(data)):
            self.seal()
        if self._fd is None:
            self._open()
        fd = self._fd
        assert fd is not None
        before = self._size
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                if written <= 0:
                    raise OSError(errno.ENOSPC, "short write")
                view = view[written:]
            (self._sync or os.fsync)(fd)
        except OSError:
            self._undo(before)
            raise
        self._size = before + len(data)

    def seal(self) -> Path | None:
        """Close and rename ``x.jsonl.part`` -> ``x.jsonl``; the sealed path, or None if no file was open."""
        fd, path = self._fd, self._path
        self._fd = self._path = None
        if fd is None or path is None:
            return None
        os.close(fd)
        sealed = sealed_path(path)
        os.rename(path, sealed)
        _fsync_dir(self.directory)
        return sealed

    def after_fork(self) -> None:
        """In a forked child: drop the parent's file (still the parent's to seal) and write under our own pid."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._path = None
        self._new_writer()

    def _due_for_rotation(self, incoming: int) -> bool:
        too_big = self._size > 0 and self._size + incoming > self.max_bytes
        return too_big or time.monotonic() - self._opened_at >= self.max_age_s

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._name = replace(self._name, seq=self._name.seq + 1)
        path = self.directory / (self._name.stem + PART_SUFFIX)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._path = path
        self._size = 0
        self._opened_at = time.monotonic()
        _fsync_dir(self.directory)  # the new name itself must survive a crash

    def _undo(self, size: int) -> None:
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, size)
        except OSError:  # cannot repair: seal what is there (whole lines + a torn tail ingest never reads)
            with contextlib.suppress(OSError):
                self.seal()
            self._fd = self._path = None


class SpoolSpanExporter(SpanExporter):
    """Append spans as OTLP/JSON lines to this process's rotating file under ``directory``.

    ``max_bytes``: a file is sealed before a batch would take it past this size (a batch larger than
    that gets a file of its own). ``max_age_s``: a file older than this is sealed at the next batch.
    ``meter_provider``: where the dropped-spans counter goes (default: the global one).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._writer = SpoolWriter(self.directory, max_bytes=max_bytes, max_age_s=max_age_s)
        meter = metrics.get_meter(semconv.INSTRUMENTATION_SCOPE, meter_provider=meter_provider)
        self._dropped = meter.create_counter(
            semconv.METRIC_TELEMETRY_DROPPED, unit="{span}", description="Spans the spool could not write"
        )
        self._lock = threading.Lock()
        self._failing = False
        self._closed = False
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (exporter := ref()) and exporter._after_fork())

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # may have been held by a parent thread at fork time
        self._writer.after_fork()

    @property
    def current_path(self) -> Path | None:
        """The ``.jsonl.part`` file being written, if one is open."""
        return self._writer.path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write ``spans`` as one line and fsync; FAILURE (never an exception) if that is not possible."""
        try:
            data = encode_request_json_line(encode_spans(spans))
        except Exception as exc:
            with self._lock:
                self._record_failure(exc, len(spans))
            return SpanExportResult.FAILURE
        with self._lock:
            if self._closed:
                return SpanExportResult.FAILURE
            try:
                self._writer.append(data)
            except Exception as exc:  # telemetry never breaks the app: log (once), count, report FAILURE
                self._record_failure(exc, len(spans))
                return SpanExportResult.FAILURE
            if self._failing:
                self._failing = False
                logger.warning("imagecost spool %s is writable again", self.directory)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered: every export is already on disk."""
        return True

    def shutdown(self) -> None:
        """Seal the current file; later exports return FAILURE."""
        with self._lock:
            self._closed = True
            try:
                self._writer.seal()
            except OSError as exc:
                logger.warning("imagecost spool %s: could not seal the current file: %s", self.directory, exc)

    def _record_failure(self, exc: BaseException, span_count: int) -> None:
        code = errno.errorcode.get(exc.errno, "") if isinstance(exc, OSError) and exc.errno else ""
        with contextlib.suppress(Exception):  # a broken meter must not break export either
            self._dropped.add(span_count, {semconv.ERROR_TYPE: code or type(exc).__name__})
        if not self._failing:
            self._failing = True
            logger.warning(
                "imagecost spool %s: cannot write spans (%s: %s); dropping them until it works again",
                self.directory,
                type(exc).__name__,
                exc,
            )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
