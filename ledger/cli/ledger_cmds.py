"""``imagecost init``: create or migrate a ledger, load the price books, say where it is and what's in it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import click

from ledger.cli.options import ledger_option, prices_dir_option
from ledger.db import connect, ledger_path, migrate
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
        counts = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in FACT_TABLES}
        first, last = con.execute(
            "select min(started_at)::date, max(started_at)::date from calls"  # session time zone is UTC
        ).fetchall()[0]
    finally:
        con.close()
    return InitResult(file, created, applied, books, loaded, counts, first, last)


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
    ]


@click.command()
@ledger_option
@prices_dir_option
def init(ledger: str | None, prices_dir: str | None) -> None:
    """Create or migrate the ledger and load the price books into it."""
    for line in describe(init_ledger(ledger, prices_dir)):
        click.echo(line)
