"""The finance report: spend per day, month, route owner, model or feature, from ``booked_calls``.

Rows are counted on the UTC day they are booked (docs/closing.md): a closed month reads its frozen rows, so
its total never changes; an open month reads its calls priced now, plus the adjustments (late calls,
re-pricing) to closed months booked into it. Official and contract money never share a column:
``official_usd`` is what OpenAI-routed calls cost at OpenAI's list prices, ``contract_usd`` what
provider-routed calls cost under their contracts (in USD), ``shadow_official_usd`` what those provider
calls would have cost at OpenAI's list prices (not owed). Sums leave out unpriced calls; ``unpriced_calls``
counts them (never $0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import duckdb
import polars as pl

from ledger.query import read_sql

# --by value -> the booked_calls expression it groups on
GROUPS = {
    "day": "booking_day",
    "month": "strftime(booking_day, '%Y-%m')",
    "route_owner": "route_owner",
    "model": "coalesce(billed_model, '(no model recorded)')",
    "feature": "coalesce(tags->>'feature', '(untagged)')",
}
MONEY = ("official_usd", "contract_usd", "shadow_official_usd")
# calls: late calls of closed months count in the month they are booked in, re-pricing adjustments count 0;
# adjustments: booked rows that adjust a closed month (their money is in the sums)
COLUMNS = ("calls", "images", *MONEY, "unpriced_calls", "adjustments")
# groupings by booking date also say whether their period is closed (frozen) or open
PERIOD_GROUPS = ("day", "month")


@dataclass(frozen=True)
class Period:
    """UTC days, both ends inclusive; None = unbounded."""

    since: date | None = None
    until: date | None = None

    def where(self) -> tuple[str, list[object]]:
        """The same period twice: on ``booked_at``, so DuckDB skips the calls' row groups by their min/max,
        and on ``booking_day``, which it pushes into the contract lookup (stg_contract_card)."""
        clauses: list[str] = []
        params: list[object] = []
        if self.since is not None:
            clauses += ["booked_at >= ?", "booking_day >= ?"]
            params += [datetime.combine(self.since, time(), UTC), self.since]
        if self.until is not None:
            clauses += ["booked_at < ?", "booking_day <= ?"]
            params += [datetime.combine(self.until + timedelta(days=1), time(), UTC), self.until]
        return (" where " + " and ".join(clauses) if clauses else ""), params

    def describe(self) -> str:
        return f"{self.since or 'first call'} to {self.until or 'last call'} (UTC days)"


def spend_report(con: duckdb.DuckDBPyConnection, *, by: str = "day", period: Period = Period()) -> pl.DataFrame:
    """One row per group: ``by`` column, ``period`` (closed | open; day and month only), then COLUMNS."""
    where, params = period.where()
    closed = (
        ", case when bool_and(period_closed) then 'closed' else 'open' end as period" if by in PERIOD_GROUPS else ""
    )
    sql = f"""
        select
            {GROUPS[by]} as {by}{closed},
            coalesce(sum(call_count), 0)::bigint as calls,
            coalesce(sum(images_returned), 0)::bigint as images,
            sum(billed_cost_usd) filter (where cost_basis = 'official_rates') as official_usd,
            sum(billed_cost_usd) filter (where cost_basis = 'provider_contract') as contract_usd,
            sum(official_cost_usd) filter (where cost_basis = 'provider_contract') as shadow_official_usd,
            count(*) filter (where pricing_status <> 'priced')::bigint as unpriced_calls,
            count(*) filter (where booking_kind = 'adjustment')::bigint as adjustments
        from booked_calls{where}
        group by 1
        order by 1
    """
    return read_sql(con, sql, params).with_columns(pl.col(MONEY).cast(pl.Float64))


def unpriced_breakdown(con: duckdb.DuckDBPyConnection, period: Period = Period()) -> dict[str, int]:
    """Unpriced booked rows per pricing_status (no_contract, no_fx_rate, unpriced_model, missing_usage)."""
    where, params = period.where()
    where += (" and " if where else " where ") + "pricing_status <> 'priced'"
    frame = read_sql(
        con, f"select pricing_status, count(*)::bigint as n from booked_calls{where} group by 1 order by 1", params
    )
    return dict(zip(frame["pricing_status"], frame["n"], strict=True))


def books_loaded(con: duckdb.DuckDBPyConnection) -> tuple[str, datetime] | None:
    """(version, loaded_at) of the price books the ledger prices with."""
    rows = con.execute("select version, loaded_at from price_book_loads order by loaded_at desc limit 1").fetchall()
    return (rows[0][0], rows[0][1]) if rows else None


def totals(report: pl.DataFrame) -> dict[str, float | int | None]:
    """Column sums; a money total is None when no group had a figure (nothing priced), not 0."""
    counts = ("calls", "images", "unpriced_calls", "adjustments")
    out: dict[str, float | int | None] = {c: int(report[c].sum()) for c in counts}
    for column in MONEY:
        out[column] = float(report[column].sum()) if report[column].null_count() < report.height else None
    return out
