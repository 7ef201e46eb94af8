"""Which files to read, how far each was read, and reading the next complete lines of one.

A *source* is one file: a sealed spool file (``*.jsonl``), a spool file still being written
(``*.jsonl.part``), or a file named on the command line (e.g. an OpenTelemetry Collector ``file``
exporter output, which may keep growing). Every source is read from its remembered offset up to its
last complete line, so a file can be read while its writer appends. Only a sealed spool file is ever
finished: its torn tail, if any, is read as a last (malformed) line, and it then moves to ``done/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from collector.spool_layout import (
    DONE_DIR,
    LOCK_FILE,
    PART_SUFFIX,
    REJECTED_DIR,
    SEALED_SUFFIX,
    SpoolName,
    host_label,
    sealed_path,
)
from ledger.errors import UserError

IDENTITY_BYTES = 4096  # a file is recognised by the sha256 of its first line's first 4 KiB
EMPTY_IDENTITY = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Offset:
    """How far a file was read (a row of ``ingest_offsets``)."""

    first_line_sha256: str
    offset: int
    lines_read: int


@dataclass
class Source:
    key: str  # absolute path recorded in the ledger; for spool files the sealed name
    path: Path  # where the file is now (``.jsonl.part`` while it is written)
    spool: Path | None  # the spool it belongs to; None for a file named on the command line
    sealed: bool  # no writer will append: read the torn tail too, then move it to done/
    known: Offset | None = None  # the ledger's row, as last seen (compare-and-set on commit)

    @property
    def rejected_name(self) -> str:
        return Path(self.key).name


@dataclass(frozen=True)
class Piece:
    """The next complete lines of one source."""

    source: Source
    data: bytes
    start: int  # byte offset of ``data`` in the file
    first_line_no: int
    line_count: int
    identity: str  # first_line_sha256
    finished: bool  # the whole (sealed) file has now been read

    @property
    def end(self) -> int:
        return self.start + len(self.data)


def spool_sources(spool: Path) -> list[Source]:
    """The spool's files in writing order: sealed ones, and ``.part`` ones (sealed if their writer is gone)."""
    sources: list[Source] = []
    for path in sorted(spool.iterdir()):
        name = path.name
        if not path.is_file() or name.startswith("."):
            continue
        if name.endswith(SEALED_SUFFIX):
            sources.append(Source(str(path.resolve()), path, spool, sealed=True))
        elif name.endswith(PART_SUFFIX) and not sealed_path(path).exists():
            sealed = str(sealed_path(path).resolve())
            sources.append(Source(sealed, path, spool, sealed=_writer_gone(name)))
    return sources


def file_source(path: Path) -> Source:
    """A file named on the command line: read incrementally, never moved."""
    return Source(str(path.resolve()), path, None, sealed=False)


def _writer_gone(name: str) -> bool:
    """True when the ``.part`` file's writer was a process on this host that no longer runs."""
    parsed = SpoolName.parse(name)
    if parsed is None or parsed.host != host_label():
        return False
    try:
        os.kill(parsed.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def read_pieces(source: Source, max_bytes: int) -> Iterator[Piece]:
    """The source's unread complete lines, in pieces of about ``max_bytes`` (a longer line is kept whole)."""
    try:
        handle = open(source.path, "rb")  # noqa: SIM115 (closed below; the path may change under us)
    except FileNotFoundError:
        if source.path.name.endswith(PART_SUFFIX) and sealed_path(source.path).exists():
            source.path, source.sealed = sealed_path(source.path), True  # sealed since it was listed
            handle = open(source.path, "rb")  # noqa: SIM115
        else:
            return
    with handle:
        size = os.fstat(handle.fileno()).st_size
        identity = _identity(handle)
        if identity is None:  # not one complete line yet
            if not source.sealed:
                return
            identity = EMPTY_IDENTITY  # a sealed file that is empty or holds only a torn line
        known = source.known
        same_file = known is not None and known.first_line_sha256 == identity and known.offset <= size
        start, line_no = (known.offset, known.lines_read + 1) if known is not None and same_file else (0, 1)
        while True:
            handle.seek(start)
            data = _complete_lines(handle, max_bytes, include_tail=source.sealed)
            finished = source.sealed and start + len(data) >= size
            if not data and not finished:
                return
            count = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
            yield Piece(source, data, start, line_no, count, identity, finished)
            if finished:
                return
            start, line_no = start + len(data), line_no + count


def _identity(handle: BinaryIO) -> str | None:
    """sha256 of the first line's first 4 KiB, once the first line is complete."""
    handle.seek(0)
    head = b""
    while b"\n" not in head:
        block = handle.read(64 * 1024)
        if not block:
            return None
        head += block
    return hashlib.sha256(head.split(b"\n", 1)[0][:IDENTITY_BYTES]).hexdigest()


def _complete_lines(handle: BinaryIO, max_bytes: int, *, include_tail: bool) -> bytes:
    """Read about ``max_bytes`` from the current position, cut after the last newline.

    A line longer than ``max_bytes`` is read whole. ``include_tail``: at end of file, also return bytes
    after the last newline (a sealed file's torn tail).
    """
    data = handle.read(max_bytes)
    while data and b"\n" not in data:
        more = handle.read(max_bytes)
        if not more:
            break
        data += more
    cut = data.rfind(b"\n") + 1
    if cut == len(data):
        return data
    rest = handle.read(1)
    if include_tail and not rest and cut < len(data):  # at EOF: the torn tail is the last line
        return data
    return data[:cut]


# --- spool directory housekeeping -------------------------------------------------------------------
def finish(piece: Piece, *, delete: bool) -> Path | None:
    """Move a fully read sealed spool file to ``<spool>/done/`` (or delete it); the new path, if moved."""
    source = piece.source
    if source.spool is None or not piece.finished:
        return None
    if delete:
        source.path.unlink(missing_ok=True)
        return None
    done = source.spool / DONE_DIR
    done.mkdir(exist_ok=True)
    target = done / Path(source.key).name
    os.replace(source.path, target)
    return target


def rejected_dir(source: Source, fallback: Path | None) -> Path:
    """Where a source's rejected lines are copied: its spool's ``rejected/``, else ``fallback``, else beside it."""
    if source.spool is not None:
        return source.spool / REJECTED_DIR
    return fallback if fallback is not None else source.path.parent / REJECTED_DIR


def append_rejected(directory: Path, name: str, lines: list[bytes]) -> Path:
    """Append the rejected lines verbatim (newline-terminated) to ``directory/name``, fsync'd."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    data = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return target


@contextlib.contextmanager
def spool_lock(spool: Path, *, wait: bool) -> Iterator[None]:
    """Hold ``<spool>/.ingest.lock`` (flock) for the block: one ingest per spool at a time."""
    spool.mkdir(parents=True, exist_ok=True)
    fd = os.open(spool / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            if not wait:
                raise UserError(
                    f"another `imagecost ingest` is running on spool {spool} (pid {holder}); "
                    "let it finish, or pass --wait to wait for it"
                ) from None
            fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):  # the pid is only for the message above; a full disk must not stop ingest
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
