"""``imagecost report``: spend for finance by booking date (closed months frozen), as a table or CSV."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import click
import duckdb
import polars as pl

from ledger.cli.options import ledger_option
from ledger.cli.tables import EMPTY, format_table
from ledger.closing import ClosedMonth, closed_months, label, next_month
from ledger.db import connect, ledger_path
from ledger.errors import UserError
from ledger.report import (
    COLUMNS,
    GROUPS,
    MONEY,
    PERIOD_GROUPS,
    Period,
    books_loaded,
    spend_report,
    totals,
    unpriced_breakdown,
)

CSV_DECIMALS = 6  # micro-dollars: per-call costs are fractions of a cent
TABLE_DECIMALS = 4


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _money(value: float) -> str:
    """Half-up at TABLE_DECIMALS after rounding to micro-dollars, so 0.15885 (0.158849999… as a float)
    shows 0.1589 as a person would round it."""
    micro = Decimal(f"{value:.{CSV_DECIMALS}f}")
    return f"{micro.quantize(Decimal(1).scaleb(-TABLE_DECIMALS), ROUND_HALF_UP):,}"


def _cell(value: object) -> str:
    if value is None:
        return EMPTY
    if isinstance(value, float):
        return _money(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def closed_in(period: Period, closed: list[ClosedMonth]) -> list[ClosedMonth]:
    """The closed months that have days in ``period``."""
    return [
        c
        for c in closed
        if (period.until is None or c.month <= period.until)
        and (period.since is None or next_month(c.month) > period.since)
    ]


def render_table(
    report: pl.DataFrame, by: str, period: Period, unpriced: dict[str, int], books: str, closed: list[ClosedMonth]
) -> list[str]:
    """The terminal view: the table, a total row, and what the figures mean."""
    rows = [[_cell(v) for v in row] for row in report.iter_rows()]
    total = totals(report)
    headers = [by, *(["period"] if by in PERIOD_GROUPS else []), *COLUMNS]
    rows.append(["total", *([""] if by in PERIOD_GROUPS else []), *(_cell(total[c]) for c in COLUMNS)])
    lines = [f"Spend by {by}, {period.describe()}", *format_table(headers, rows), ""]
    lines.append(
        "official_usd: OpenAI-routed calls at OpenAI list prices; contract_usd: provider-routed calls under "
        "their contracts (USD); shadow_official_usd: those provider calls at OpenAI list prices (not owed)."
    )
    if unpriced:
        why = ", ".join(f"{n:,} {status}" for status, n in unpriced.items())
        lines.append(f"unpriced calls are not in the sums: {why} (see booked_calls.unpriced_reason).")
    if closed:
        which = ", ".join(f"{label(c.month)} (close #{c.close_id})" for c in closed)
        lines.append(f"closed months read their frozen rows and never change: {which}.")
    if total["adjustments"]:
        lines.append(
            f"adjustment rows in the sums: {total['adjustments']:,} (late calls and re-pricing of closed months, "
            "booked on the first day of the first open month after them; see booked_calls.adjustment_reason)."
        )
    lines.append(f"price books: {books}")
    return lines


@click.command()
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="First UTC day (inclusive).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), help="Last UTC day (inclusive).")
@click.option("--by", type=click.Choice(list(GROUPS)), default="day", show_default=True, help="Group rows by.")
@click.option("--csv", "as_csv", is_flag=True, help=f"CSV on stdout (money to {CSV_DECIMALS} decimals).")
@ledger_option
def report(since: datetime | None, until: datetime | None, by: str, as_csv: bool, ledger: str | None) -> None:
    """Spend per day, month, route owner, model or feature, by booking day; closed months read frozen.

    Official and contract spend are in separate columns. A closed month (imagecost close) keeps its frozen
    total; late calls and re-pricing of it are adjustments booked into the first open month after it.
    """
    period = Period(_day(since), _day(until))
    if period.since and period.until and period.since > period.until:
        raise UserError(f"--since {period.since} is after --until {period.until}")
    file = ledger_path(ledger)
    con = connect(file, read_only=True)
    try:
        try:
            result = spend_report(con, by=by, period=period)
        except duckdb.CatalogException:
            raise UserError(
                f"ledger {file} has no pricing views; run `imagecost init --ledger {file}` to migrate it"
            ) from None
        unpriced = unpriced_breakdown(con, period)
        loaded = books_loaded(con)
        closed = closed_in(period, closed_months(con))
    finally:
        con.close()
    if as_csv:
        click.echo(result.with_columns(pl.col(MONEY).round(CSV_DECIMALS)).write_csv(), nl=False)
        return
    books = f"version {loaded[0][:12]}, loaded {loaded[1]:%Y-%m-%d %H:%M} UTC" if loaded else "never loaded"
    click.echo("\n".join(render_table(result, by, period, unpriced, books, closed)))
