"""``imagecost init``: create or migrate a ledger, load the price books, say where it is and what's in it.

``imagecost refresh``: bring the ledger's stores (``ledger.stores``) up to date.

``imagecost backup``: copy the ledger into its backups directory; ``imagecost rebuild``: remake a ledger
DuckDB can no longer open, from its newest backup and the spool (``ledger.backup``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import click

from collector.spool_layout import spool_dir
from ledger import backup, stores
from ledger.cli.options import ledger_option, prices_dir_option, spool_option
from ledger.db import LedgerMissing, connect, existing_ledger, ledger_path, migrate, open_ledger
from ledger.pricebook import PriceBooks, load_books, sync_to_ledger

FACT_TABLES = ("calls", "attempts", "images")


@dataclass(frozen=True)
class InitResult:
    """What ``init_ledger`` did."""

    path: Path
    created: bool
    migrations_applied: list[str]
    books: PriceBooks
    books_loaded: bool  # False when the ledger already held this version of the books
    stores: stores.RefreshResult
    counts: dict[str, int]  # rows per fact table
    first_day: date | None  # UTC day of the first and last call
    last_day: date | None


def init_ledger(
    path: str | os.PathLike[str] | None = None, prices_dir: str | os.PathLike[str] | None = None
) -> InitResult:
    """Create or migrate the ledger and load the price books into it (validated first, so a bad
    book leaves no half-made ledger behind). Short: opens the file, works, closes it."""
    books = load_books(prices_dir)
    file = ledger_path(path)
    created = not file.exists()
    file.parent.mkdir(parents=True, exist_ok=True)
    con = connect(file)
    try:
        applied = migrate(con)
        loaded = sync_to_ledger(con, books)
        refreshed = stores.refresh(con)
        counts = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in FACT_TABLES}
        first, last = con.execute(
            "select min(started_at)::date, max(started_at)::date from calls"  # session time zone is UTC
        ).fetchall()[0]
    finally:
        con.close()
    return InitResult(file, created, applied, books, loaded, refreshed, counts, first, last)


def describe(result: InitResult) -> list[str]:
    """The lines ``imagecost init`` prints."""
    books = result.books
    if result.created:
        state = "created"
    elif result.migrations_applied:
        state = "migrated: applied " + ", ".join(result.migrations_applied)
    else:
        state = "schema up to date"
    span = f" from {result.first_day} to {result.last_day} (UTC)" if result.first_day else ""
    counts = result.counts
    return [
        f"ledger: {result.path.resolve()} ({state})",
        f"price books: version {books.version[:12]} {'loaded' if result.books_loaded else 'unchanged'} "
        f"({len(books.official_rates)} official rates, {len(books.contracts)} contract terms, "
        f"{len(books.fx_rates)} fx rates) from {', '.join(books.files)}",
        f"contents: {counts['calls']} calls{span}, {counts['attempts']} attempts, {counts['images']} images",
    ] + ([result.stores.summary()] if result.stores.changed else [])


@click.command()
@ledger_option
@prices_dir_option
def init(ledger: str | None, prices_dir: str | None) -> None:
    """Create or migrate the ledger and load the price books into it."""
    for line in describe(init_ledger(ledger, prices_dir)):
        click.echo(line)


@click.command()
@ledger_option
@click.option("--rebuild", is_flag=True, help="Rebuild every store from scratch instead of appending new calls.")
def refresh(ledger: str | None, rebuild: bool) -> None:
    """Bring the stores that make large ledgers fast up to date (ingest does this after each run).

    Never needed for correct figures: a store that is behind is not read.
    """
    if not ledger_path(ledger).is_file():
        raise LedgerMissing(f"no ledger at {ledger_path(ledger)}; create one with `imagecost init`")
    with open_ledger(ledger) as con:
        click.echo(stores.refresh(con, rebuild=rebuild).summary())


@click.command()
@ledger_option
@spool_option
@click.option(
    "--backup",
    "backup_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Start from this backup (default: the newest in LEDGER.backups/ that opens).",
)
@click.option("--force", is_flag=True, help="Rebuild even though the ledger opens.")
@prices_dir_option
def rebuild(
    ledger: str | None, spool: Path | None, backup_file: Path | None, force: bool, prices_dir: str | None
) -> None:
    """Set aside a ledger DuckDB cannot open and remake it: newest backup, then every call in the spool.

    The broken file (and its WAL) is renamed to *.broken-<time>, kept for a bug report. Calls come back from
    the spool's done/ files and the spool itself (exactly once); closed months come back from the backup that
    `close` and `reopen` write.
    """
    result = backup.rebuild(
        ledger_path(ledger), spool or spool_dir(), backup=backup_file, force=force, prices_dir=prices_dir
    )
    for line in result.lines():
        click.echo(line)


@click.command(name="backup")
@ledger_option
def backup_cmd(ledger: str | None) -> None:
    """Copy the ledger into LEDGER.backups/ now (close and reopen do it too; the newest 3 are kept).

    `imagecost rebuild` starts from the newest backup, and `imagecost spool prune` frees the spool files all hold.
    """
    file = existing_ledger(ledger)
    with open_ledger(file) as con:
        calls = con.execute("select count(*) from calls").fetchall()[0][0]
        click.echo(f"backup: {backup.write_backup(con, file, 'manual')} ({calls:,} calls)")
