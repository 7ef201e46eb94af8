"""``ingest_paths``: spool directories and OTLP/JSON files -> the ledger, one transaction per batch.

Per run: lock each spool (``<spool>/.ingest.lock``), open the ledger once to migrate it, reload the price
books and read the remembered offsets, then per batch of about ``batch_bytes`` of new lines:

1. parse the lines in an in-memory DuckDB (the ledger is not held meanwhile; one parser thread per core,
   each on its own batch, while one "store" thread does steps 2-4 batch after batch, in order);
2. append rejected lines to ``rejected/`` (before the commit: a crash then copies twice, never zero times);
3. open the ledger and, in ONE transaction: check the offsets are still the ones read (another ingest
   did not move them), add the calls whose call_id is new plus their attempts and images, record the
   rejected lines, the files read and the new offsets; close the ledger;
4. move sealed spool files read to their end into ``done/`` (or delete them).

A crash anywhere repeats at most the unfinished batch, and dedupe on call_id makes that harmless.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from collector.spool_layout import PART_SUFFIX, SEALED_SUFFIX
from ledger import db, stores
from ledger.errors import UserError
from ledger.facts import insert_attempts, insert_calls, insert_images
from ledger.ingest import files
from ledger.ingest.files import Offset, Piece, Source
from ledger.ingest.reader import Chunk, Parsed, read_chunks
from ledger.pricebook import load_books, sync_to_ledger

log = logging.getLogger(__name__)

BATCH_BYTES = 64 * 1024 * 1024
# One parser per core: a single-threaded DuckDB per batch spends less CPU than one multi-threaded query.
PARSERS = max(1, min(4, os.cpu_count() or 1))


@dataclass
class FileReport:
    """What one file gave in this run."""

    path: str
    lines: int = 0
    spans: int = 0
    calls_added: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, error)
    rejected_copy: Path | None = None
    moved_to: Path | None = None
    deleted: bool = False


@dataclass
class IngestResult:
    """Totals of one ingest run, and a report per file that had anything new."""

    files: list[FileReport] = field(default_factory=list)
    calls_added: int = 0
    duplicates: int = 0
    attempts_added: int = 0
    images_added: int = 0
    spans_ignored: int = 0  # spans of other instrumentations
    batches: int = 0
    price_books_updated: bool = False
    stores: stores.RefreshResult | None = None  # derived tables brought up to date after the batches
    seconds: float = 0.0

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def lines_rejected(self) -> int:
        return sum(len(f.rejected) for f in self.files)

    def warnings(self) -> list[str]:
        """One line per file with rejected lines: where, which lines, the first error, where the copy went."""
        out = []
        for report in self.files:
            if not report.rejected:
                continue
            numbers = ", ".join(str(n) for n, _ in report.rejected[:10]) + (
                ", ..." if len(report.rejected) > 10 else ""
            )
            copy = f"; copied to {report.rejected_copy}" if report.rejected_copy else ""
            out.append(
                f"{report.path}: {len(report.rejected)} malformed line(s) set aside (line {numbers}); "
                f"line {report.rejected[0][0]}: {report.rejected[0][1]}{copy}"
            )
        return out

    def summary(self) -> str:
        """The one-line outcome the CLI prints."""
        rate = f" in {self.seconds:.2f}s" if self.seconds else ""
        return (
            f"ingested {self.calls_added} new call(s) ({self.attempts_added} attempts, {self.images_added} images) "
            f"from {len(self.files)} file(s), {self.lines} line(s){rate}; {self.duplicates} already in the ledger; "
            f"{self.spans_ignored} span(s) of other instrumentations ignored; {self.lines_rejected} line(s) rejected; "
            f"price books {'updated' if self.price_books_updated else 'unchanged'}"
        )


def ingest_paths(
    ledger_path: str | os.PathLike[str] | None,
    paths: Iterable[str | os.PathLike[str]],
    prices_dir: str | os.PathLike[str] | None = None,
    *,
    delete: bool = False,
    wait: bool = False,
    rejected_dir: str | os.PathLike[str] | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> IngestResult:
    """Ingest spool directories and OTLP/JSON files into the ledger (idempotent; see the module doc).

    ``delete``: delete fully read spool files instead of moving them to ``done/``. ``wait``: wait for a
    running ingest of the same spool instead of failing. ``rejected_dir``: where rejected lines of files
    outside a spool are copied (default: ``rejected/`` beside the file).
    """
    started = time.perf_counter()
    spools, named = _classify([Path(p) for p in paths])
    books = load_books(prices_dir)
    db.ledger_path(ledger_path).parent.mkdir(parents=True, exist_ok=True)
    result = IngestResult()
    with contextlib.ExitStack() as stack:
        for spool in spools:
            stack.enter_context(files.spool_lock(spool, wait=wait))
        listed = [s for spool in spools for s in files.spool_sources(spool)] + [files.file_source(p) for p in named]
        _refuse_ledger_as_input(db.ledger_path(ledger_path), listed)
        sources = list({source.key: source for source in reversed(listed)}.values())[::-1]  # a file once
        with db.open_ledger(ledger_path) as con:
            result.price_books_updated = sync_to_ledger(con, books)
            known = _offsets(con)
            _forget_gone_files(con, known, spools)
        for source in sources:
            source.known = known.get(source.key)
        reports: dict[str, FileReport] = {}
        finished: list[str] = []
        fallback = Path(rejected_dir) if rejected_dir else None

        def store(batch: list[Piece], parsed: Parsed) -> None:
            """Steps 2-4 for one batch; runs on the store thread, one batch at a time, in batch order."""
            _report_batch(batch, parsed, reports, result, fallback)
            with contextlib.closing(db.connect(ledger_path)) as con:
                con.execute("set threads = 1")  # the parsers have the other cores
                _commit(con, batch, parsed, reports, result)
            for piece in batch:
                piece.source.known = Offset(piece.identity, piece.end, piece.first_line_no - 1 + piece.line_count)
            finished.extend(_finish(batch, reports, delete=delete))

        # Batches are parsed by PARSERS threads at once (each with its own single-threaded in-memory DuckDB),
        # and stored by one thread in batch order, while the main thread reads the next batch from disk.
        with ThreadPoolExecutor(PARSERS) as parsers, ThreadPoolExecutor(1) as storer:
            parsing: deque[tuple[list[Piece], Future[Parsed]]] = deque()
            storing: Future[None] | None = None

            def store_next() -> None:
                nonlocal storing
                batch, parsed = parsing.popleft()
                if storing is not None:
                    storing.result()  # the previous batch is stored (or its error is raised here)
                storing = storer.submit(store, batch, parsed.result())

            for batch in _batches(sources, batch_bytes):
                result.batches += 1
                chunks = [Chunk(p.source.key, p.data, p.first_line_no) for p in batch]
                parsing.append((batch, parsers.submit(read_chunks, chunks, threads=1)))
                if len(parsing) >= PARSERS:
                    store_next()
            while parsing:
                store_next()
            if storing is not None:
                storing.result()
        if finished:  # their offsets are no longer needed: the files are gone from the spool
            with contextlib.closing(db.connect(ledger_path)) as con:
                con.execute("delete from ingest_offsets where path in (select unnest(?))", [finished])
        # after the last batch, once: readers compute live meanwhile (and after a crash), never stale
        with contextlib.closing(db.connect(ledger_path)) as con:
            result.stores = stores.refresh(con)
    result.files = list(reports.values())
    result.seconds = time.perf_counter() - started
    return result


def _classify(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    spools, named = [], []
    for path in paths:
        if path.is_dir():
            spools.append(path)
        elif path.is_file():
            named.append(path)
        else:
            raise UserError(f"{path}: no such file or spool directory; pass a spool directory or OTLP/JSON files")
    return sorted(set(spools), key=str), named


def _refuse_ledger_as_input(ledger: Path, listed: Sequence[Source]) -> None:
    """A ledger named like a spool file inside the spool (or named as a FILE) would be read, then moved to done/."""
    ledger_files = {ledger.resolve(), ledger.resolve().with_name(ledger.name + ".wal")}
    for source in listed:
        if source.path.resolve() in ledger_files:
            raise UserError(
                f"{source.path} is the ledger itself, not a spool or OTLP/JSON file; "
                "keep the ledger outside the spool directory (--ledger) and do not name it as a FILE"
            )


def _forget_gone_files(con: duckdb.DuckDBPyConnection, known: dict[str, Offset], spools: Sequence[Path]) -> None:
    """Drop the offsets of the spool files that have left the spool (moved to done/ or deleted).

    A run killed between moving a file and forgetting its offset leaves the row behind; spool file names are
    unique, so the row is never read again. Only this run's spools are checked: their ingest lock is held.
    """
    directories = {spool.resolve() for spool in spools}
    gone = [
        key
        for key in known
        if Path(key).parent in directories
        # .part first: a writer sealing it meanwhile renames .part -> sealed, so one of the two is seen
        and not Path(key.removesuffix(SEALED_SUFFIX) + PART_SUFFIX).exists()
        and not Path(key).exists()
    ]
    if gone:
        con.execute("delete from ingest_offsets where path in (select unnest(?))", [gone])
        for key in gone:
            del known[key]
        log.info("forgot the offsets of %d spool file(s) no longer in the spool", len(gone))


def _offsets(con: duckdb.DuckDBPyConnection) -> dict[str, Offset]:
    rows = con.execute("select path, first_line_sha256, offset_bytes, lines_read from ingest_offsets").fetchall()
    return {path: Offset(sha, offset, lines) for path, sha, offset, lines in rows}


def _batches(sources: Sequence[Source], batch_bytes: int) -> Iterator[list[Piece]]:
    """Pieces grouped into batches of about ``batch_bytes``; a source appears at most once per batch."""
    batch: list[Piece] = []
    size = 0
    for source in sources:
        for piece in files.read_pieces(source, batch_bytes):
            if batch and (size + len(piece.data) > batch_bytes or any(p.source is source for p in batch)):
                yield batch
                batch, size = [], 0
            batch.append(piece)
            size += len(piece.data)
    if batch:
        yield batch


def _report_batch(
    batch: Sequence[Piece],
    parsed: Parsed,
    reports: dict[str, FileReport],
    result: IngestResult,
    fallback_rejected_dir: Path | None,
) -> None:
    """Per-file counts, and the rejected lines copied aside (before the commit, see module doc)."""
    by_chunk: dict[int, list[bytes]] = {}
    for line in parsed.rejected:
        by_chunk.setdefault(line.chunk, []).append(line.raw)
    for index, piece in enumerate(batch):
        report = reports.setdefault(piece.source.key, FileReport(piece.source.key))
        stats = parsed.stats[index]
        report.lines += piece.line_count
        report.spans += stats.spans
        result.spans_ignored += stats.spans - stats.call_spans
        report.rejected += [(r.line_no, r.error) for r in parsed.rejected if r.chunk == index]
        if index in by_chunk:
            directory = files.rejected_dir(piece.source, fallback_rejected_dir)
            report.rejected_copy = files.append_rejected(directory, piece.source.rejected_name, by_chunk[index])


def _commit(
    con: duckdb.DuckDBPyConnection,
    batch: Sequence[Piece],
    parsed: Parsed,
    reports: dict[str, FileReport],
    result: IngestResult,
) -> None:
    """Everything the batch changes in the ledger, in one transaction."""
    con.execute("begin")
    try:
        _check_offsets(con, batch)
        calls = parsed.calls
        new_calls = _new_calls(con, calls)
        new_ids = new_calls["call_id"]
        # the calls were looked up just above, in this transaction; their attempts and images come with them
        added = insert_calls(con, new_calls, known_new=True)
        result.attempts_added += insert_attempts(con, _only(parsed.attempts, new_ids), known_new=True)
        result.images_added += insert_images(con, _only(parsed.images, new_ids), known_new=True)
        _record_files(con, batch, parsed, new_calls, reports)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    result.calls_added += added
    result.duplicates += calls.num_rows - added
    log.info(
        "batch of %d file piece(s): %d call(s) added, %d already stored", len(batch), added, calls.num_rows - added
    )


def _new_calls(con: duckdb.DuckDBPyConnection, calls: pa.Table) -> pa.Table:
    """The batch's calls not in the ledger yet; a span read twice in this batch (a copied file) counts once."""
    # Only the ledger's ids that are in the batch are looked up (the hash table is the batch's, not the ledger's),
    # and the rows are filtered in Arrow rather than copied through DuckDB.
    con.register("_batch_ids", calls.select(["call_id"]))
    try:
        known = con.sql("select call_id from calls semi join _batch_ids using (call_id)").to_arrow_table()
    finally:
        con.unregister("_batch_ids")
    new = calls.filter(pc.invert(pc.is_in(calls["call_id"], value_set=known["call_id"]))) if known.num_rows else calls
    if pc.count_distinct(new["call_id"]).as_py() == new.num_rows:
        return new
    con.register("_batch_new", new)
    try:
        return con.sql(
            "select * from _batch_new qualify row_number() over (partition by call_id order by source_file) = 1"
        ).to_arrow_table()
    finally:
        con.unregister("_batch_new")


def _only(table: pa.Table, call_ids: pa.ChunkedArray) -> pa.Table:
    return table.filter(pc.is_in(table["call_id"], value_set=call_ids))


def _check_offsets(con: duckdb.DuckDBPyConnection, batch: Sequence[Piece]) -> None:
    """Compare-and-set: the ledger's offsets must still be the ones this run read them as."""
    keys = [p.source.key for p in batch]
    rows = con.execute(
        "select path, first_line_sha256, offset_bytes, lines_read from ingest_offsets where path in (select unnest(?))",
        [keys],
    ).fetchall()
    now = {path: Offset(sha, offset, lines) for path, sha, offset, lines in rows}
    for piece in batch:
        if now.get(piece.source.key) != piece.source.known:
            raise UserError(
                f"{piece.source.key} was ingested by another `imagecost ingest` meanwhile; run ingest again "
                "(nothing is lost or doubled)"
            )


def _record_files(
    con: duckdb.DuckDBPyConnection,
    batch: Sequence[Piece],
    parsed: Parsed,
    new_calls: pa.Table,
    reports: dict[str, FileReport],
) -> None:
    """ingested_files, rejected_lines and ingest_offsets rows for the batch."""
    added = {}
    if new_calls.num_rows:
        grouped = new_calls.group_by("source_file").aggregate([("call_id", "count")])
        added = dict(zip(grouped["source_file"].to_pylist(), grouped["call_id_count"].to_pylist(), strict=True))
    rejected_by_chunk = [0] * len(batch)
    for line in parsed.rejected:
        rejected_by_chunk[line.chunk] += 1
    ingested = pa.table(
        {
            "path": [p.source.key for p in batch],
            "size_bytes": [len(p.data) for p in batch],
            "spans_seen": [s.spans for s in parsed.stats],
            "calls_added": [added.get(p.source.key, 0) for p in batch],
            "lines_rejected": rejected_by_chunk,
        }
    )
    rejected = pa.table(
        {
            "path": [batch[r.chunk].source.key for r in parsed.rejected],
            "line_number": pa.array([r.line_no for r in parsed.rejected], pa.int64()),
            "error": pa.array([r.error for r in parsed.rejected], pa.string()),
        }
    )
    offsets = pa.table(
        {
            "path": [p.source.key for p in batch],
            "first_line_sha256": [p.identity for p in batch],
            "offset_bytes": [p.end for p in batch],
            "lines_read": [p.first_line_no - 1 + p.line_count for p in batch],
        }
    )
    for piece, stats in zip(batch, parsed.stats, strict=True):
        report = reports[piece.source.key]
        report.calls_added += added.get(piece.source.key, 0)
        report.duplicates += stats.call_spans - added.get(piece.source.key, 0)
    for name, table in (("_ingested", ingested), ("_rejected", rejected), ("_offsets", offsets)):
        con.register(name, table)
    con.execute("insert into ingested_files by name select * from _ingested")
    con.execute("insert into rejected_lines by name select * from _rejected")
    con.execute("delete from ingest_offsets where path in (select path from _offsets)")
    con.execute("insert into ingest_offsets by name select * from _offsets")
    for name in ("_ingested", "_rejected", "_offsets"):
        con.unregister(name)


def _finish(batch: Sequence[Piece], reports: dict[str, FileReport], *, delete: bool) -> list[str]:
    """Move (or delete) the sealed spool files read to their end; their keys."""
    gone: list[str] = []
    for piece in batch:
        if piece.source.spool is None or not piece.finished:
            continue
        report = reports[piece.source.key]
        report.moved_to, report.deleted = files.finish(piece, delete=delete), delete
        gone.append(piece.source.key)
    return gone
