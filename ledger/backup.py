"""Ledger backups, and rebuilding a ledger that DuckDB can no longer open (docs/reliability.md).

Calls can always be re-read from the spool's ``done/`` files, but a month's close (its frozen rows, priced
with the books of that day) and a reopen exist only in the ledger. So ``close`` and ``reopen`` copy the
ledger into ``<ledger>.backups/`` once they have committed, keeping the newest ``KEEP``. ``rebuild`` puts the
broken file aside, starts from the newest backup that opens (or from nothing) and ingests the spool's
``done/`` files and the spool on top: ingest is idempotent, so calls already in the backup are skipped.

``done/`` would grow forever (about 3.5 KB per call), so ``prune_done`` deletes the ``done/`` files whose
every byte each backup records as ingested, and no other: a rebuild never needs them again.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from collector.spool_layout import DONE_DIR, REJECTED_DIR, SEALED_SUFFIX
from ledger.errors import UserError
from ledger.ingest import IngestResult, files, ingest_paths

KEEP = 3  # backups kept per ledger; each is a full copy of the ledger file
SUFFIX = ".duckdb"


def backups_dir(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".backups")


def backups(ledger: Path) -> list[Path]:
    """The ledger's backups, newest first (names start with a UTC timestamp)."""
    directory = backups_dir(ledger)
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if p.name.endswith(SUFFIX)), reverse=True)


def write_backup(con: duckdb.DuckDBPyConnection, ledger: Path, label: str) -> Path:
    """Copy the ledger ``con`` has open for writing into its backups directory; drop all but the newest KEEP.

    ``checkpoint`` first writes everything into the file and empties the WAL; the writer's lock is held
    throughout, so the copied file is the committed ledger. The copy is fsync'd and renamed into place.
    """
    con.execute("checkpoint")
    directory = backups_dir(ledger)
    directory.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = directory / f"{stamp}-{label}{SUFFIX}"
    partial = target.with_name(target.name + ".tmp")
    with open(ledger, "rb") as source, open(partial, "wb") as copy:
        shutil.copyfileobj(source, copy, 16 * 1024 * 1024)
        copy.flush()
        os.fsync(copy.fileno())
    os.replace(partial, target)
    _fsync_dir(directory)
    for old in backups(ledger)[KEEP:]:
        old.unlink(missing_ok=True)
    return target


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def opens(path: Path) -> str | None:
    """None if DuckDB opens ``path`` as a ledger and reads its calls; otherwise why not (one line)."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        return " ".join(str(exc).splitlines())
    try:
        con.execute("select count(*) from calls").fetchall()
    except duckdb.Error as exc:
        return " ".join(str(exc).splitlines())
    finally:
        con.close()
    return None


@dataclass
class RebuildResult:
    ledger: Path
    set_aside: list[Path]  # the broken ledger file and its WAL, renamed
    problem: str | None  # why the ledger did not open (None: it was missing, or --force)
    backup: Path | None  # the backup the new ledger started from
    skipped_backups: list[tuple[Path, str]] = field(default_factory=list)  # backups that did not open, and why
    done_files: int = 0
    ingest: IngestResult | None = None

    def lines(self) -> list[str]:
        out = [f"ledger did not open: {self.problem}"] if self.problem else []
        out += [f"{path}: set aside" for path in self.set_aside]
        out += [f"backup {path.name} skipped: {why}" for path, why in self.skipped_backups]
        if self.backup is not None:
            out.append(f"started from backup {self.backup} (closed months as of that backup are kept)")
        else:
            out.append(
                "started from an empty ledger: no usable backup, so closed months and reopen records are not "
                "recovered (close them again: `imagecost close YYYY-MM`); reconciliation imports can be imported again"
            )
        if self.done_files == 0:
            out.append(
                "the spool's done/ holds no files: calls ingested with --delete since the backup are not recovered"
            )
        if self.ingest is not None:
            out.append(f"from {self.done_files} done/ file(s) and the spool: {self.ingest.summary()}")
        out.append(f"rebuilt {self.ledger}")
        return out


def _require_spool(spool: Path) -> None:
    if not spool.is_dir():
        raise UserError(f"no spool directory at {spool}; pass --spool DIR (the directory apps export to)")


def rebuild(
    ledger: Path,
    spool: Path,
    *,
    backup: Path | None = None,
    force: bool = False,
    prices_dir: str | os.PathLike[str] | None = None,
) -> RebuildResult:
    """Set a broken ledger aside and make a new one from a backup, the spool's done/ files and the spool."""
    _require_spool(spool)
    if backup is not None and (why := opens(backup)) is not None:
        raise UserError(f"backup {backup} does not open as a ledger: {why}")
    problem = opens(ledger) if ledger.exists() else None
    if ledger.exists() and problem is None and not force:
        raise UserError(
            f"ledger {ledger} opens fine: nothing to rebuild (pass --force to rebuild it anyway, e.g. "
            "after a spool file was ingested into the wrong ledger)"
        )
    with files.spool_lock(spool, wait=False):  # fail now, not halfway, if an ingest is running on the spool
        pass
    result = RebuildResult(ledger, _set_aside(ledger), problem, backup)
    if backup is None:
        result.backup, result.skipped_backups = newest_usable(ledger)
    if result.backup is not None:
        partial = ledger.with_name(ledger.name + ".restoring")
        shutil.copyfile(result.backup, partial)
        os.replace(partial, ledger)
    done = sorted((spool / DONE_DIR).glob(f"*{SEALED_SUFFIX}")) if (spool / DONE_DIR).is_dir() else []
    result.done_files = len(done)
    # wait=True: an ingest started since the check above finishes first (it read the broken or the new file;
    # either way its calls are in done/ or still in the spool, and read again here).
    result.ingest = ingest_paths(ledger, [spool, *done], prices_dir, wait=True, rejected_dir=spool / REJECTED_DIR)
    return result


def _set_aside(ledger: Path) -> list[Path]:
    """Rename the ledger and its WAL to ``*.broken-<UTC time>`` (kept for a bug report); the new names."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")  # microseconds: two rebuilds never share a name
    moved = []
    for path in (ledger, ledger.with_name(ledger.name + ".wal")):
        if path.exists():
            target = path.with_name(f"{path.name}.broken-{stamp}")
            os.replace(path, target)
            moved.append(target)
    return moved


def newest_usable(ledger: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest backup that opens, and the newer ones that did not (with why)."""
    skipped = []
    for candidate in backups(ledger):
        why = opens(candidate)
        if why is None:
            return candidate, skipped
        skipped.append((candidate, why))
    return None, skipped


@dataclass
class PruneResult:
    backup: Path
    deleted: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # done/ files the backup does not fully hold
    bytes_deleted: int = 0
    dry_run: bool = False

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        out = [f"{verb} {path}" for path in self.deleted] if self.dry_run else []
        out.append(
            f"{verb} {len(self.deleted)} done/ file(s) ({self.bytes_deleted / 1e6:.1f} MB) whose calls are in every "
            f"backup (the oldest: {self.backup}); kept {len(self.kept)} ingested after it"
        )
        return out


def prune_done(ledger: Path, spool: Path, *, dry_run: bool = False) -> PruneResult:
    """Delete the spool's done/ files that every backup of the ledger holds completely.

    A file counts as held when the backup's ``ingested_files`` rows for it (under its spool name, or its
    done/ path when a rebuild read it from there) add up to exactly its size: every line was read in a
    transaction the backup contains. Anything else is kept (a file read twice adds up to more: kept too).
    The oldest backup that opens is asked: later ones hold all it holds (``ingested_files`` is append-only),
    so a rebuild that has to fall back past a damaged newest backup still finds every call.
    """
    _require_spool(spool)
    done_dir = spool / DONE_DIR
    usable = [candidate for candidate in reversed(backups(ledger)) if opens(candidate) is None]
    backup = usable[0] if usable else None
    if backup is None:
        raise UserError(
            f"no backup of {ledger} opens (they are written by `imagecost close`, `reopen` and `backup`); "
            "without one every done/ file may still be needed: run `imagecost backup` first"
        )
    con = duckdb.connect(str(backup), read_only=True)
    try:
        read = dict(con.execute("select path, sum(size_bytes) from ingested_files group by path").fetchall())
    finally:
        con.close()
    result = PruneResult(backup, dry_run=dry_run)
    files = sorted(done_dir.glob(f"*{SEALED_SUFFIX}")) if done_dir.is_dir() else []
    for path in files:
        size = path.stat().st_size
        names = (str((spool / path.name).resolve()), str(path.resolve()))
        if any(read.get(name) == size for name in names):
            result.deleted.append(path)
            result.bytes_deleted += size
            if not dry_run:
                path.unlink()
        else:
            result.kept.append(path)
    return result
