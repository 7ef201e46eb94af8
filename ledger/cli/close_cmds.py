"""``imagecost close YYYY-MM`` and ``imagecost reopen YYYY-MM --reason TEXT`` (docs/closing.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import duckdb

from ledger import backup, stores
from ledger.cli.options import ledger_option
from ledger.closing import AS_OF_ENV, PeriodEvent, close_month, label, os_user, parse_month, reopen_month, today
from ledger.db import existing_ledger, open_ledger

no_backup_option = click.option(
    "--no-backup",
    is_flag=True,
    help="Do not copy the ledger into LEDGER.backups/ afterwards (see `imagecost rebuild`).",
)


def _usd(value: float | None) -> str:
    return "–" if value is None else f"{value:.6f}"


def describe(event: PeriodEvent) -> list[str]:
    """The lines ``close`` / ``reopen`` print about the event they recorded."""
    if event.event == "closed":
        head = f"closed {label(event.month)} (close #{event.close_id}): froze {event.row_count:,} rows"
    else:
        head = (
            f"reopened {label(event.month)} (close #{event.close_id} superseded): "
            f"it reads live again, {event.row_count:,} rows"
        )
    books = event.price_book_version[:12] if event.price_book_version else "never loaded"
    reason = f"; reason: {event.reason}" if event.reason else ""
    return [
        head,
        f"  {event.calls:,} calls, {event.adjustments:,} adjustments to earlier closed months, "
        f"{event.unpriced_rows:,} unpriced rows, {event.images:,} images",
        f"  billed {_usd(event.billed_usd)} USD: official_usd {_usd(event.official_usd)}, "
        f"contract_usd {_usd(event.contract_usd)}",
        f"  price books {books}; by {event.by_user} at {event.event_at:%Y-%m-%d %H:%M:%S} UTC{reason}",
    ]


def _backup(con: Any, file: Path, label: str) -> str:
    """The line saying where the backup went; a failed backup warns (the close itself is committed)."""
    try:
        return f"  backup: {backup.write_backup(con, file, label)}"
    except (OSError, duckdb.Error) as exc:
        click.echo(f"warning: the ledger was not backed up ({' '.join(str(exc).splitlines())})", err=True)
        return "  backup: none"


@click.command()
@click.argument("month", metavar="YYYY-MM")
@click.option("--reason", default=None, help="A note recorded with the close (optional).")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="YYYY-MM-DD",
    help=f"Today's UTC date, which decides the current month (default: the clock, or ${AS_OF_ENV}). For tests.",
)
@ledger_option
@no_backup_option
def close(month: str, reason: str | None, as_of: str | None, ledger: str | None, no_backup: bool) -> None:
    """Freeze a finished UTC month: reports then read it as it is now; later changes become adjustments.

    Then copies the ledger into LEDGER.backups/ (the newest 3 are kept): a close exists only in the ledger.
    """
    first_day = parse_month(month)
    day = today(as_of)
    file = existing_ledger(ledger)
    with open_ledger(file) as con:
        event = close_month(con, first_day, today=day, by_user=os_user(), reason=reason)
        stores.refresh(con)  # the spend cube reads the booked rows, which the close just changed
        lines = describe(event) + ([] if no_backup else [_backup(con, file, f"close-{label(first_day)}")])
    click.echo("\n".join(lines))


@click.command()
@click.argument("month", metavar="YYYY-MM")
@click.option("--reason", default=None, help="Why the month is reopened (required; recorded).")
@ledger_option
@no_backup_option
def reopen(month: str, reason: str | None, ledger: str | None, no_backup: bool) -> None:
    """Reopen a closed UTC month (recorded with who, when and why): it reads live again until closed again."""
    first_day = parse_month(month)
    file = existing_ledger(ledger)
    with open_ledger(file) as con:
        event = reopen_month(con, first_day, by_user=os_user(), reason=reason)
        stores.refresh(con)
        lines = describe(event) + ([] if no_backup else [_backup(con, file, f"reopen-{label(first_day)}")])
    click.echo("\n".join(lines))
