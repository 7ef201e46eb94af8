"""The finance report: spend per day, route owner, model or feature, from ``priced_calls``.

Official and contract money never share a column: ``official_usd`` is what OpenAI-routed calls cost at
OpenAI's list prices, ``contract_usd`` what provider-routed calls cost under their contracts (in USD),
``shadow_official_usd`` what those provider calls would have cost at OpenAI's list prices (not owed).
Sums leave out unpriced calls; ``unpriced_calls`` counts them (never $0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import duckdb
import polars as pl

from ledger.query import read_sql

# --by value -> the priced_calls expression it groups on
GROUPS = {
    "day": "call_day",
    "route_owner": "route_owner",
    "model": "coalesce(billed_model, '(no model recorded)')",
    "feature": "coalesce(tags->>'feature', '(untagged)')",
}
MONEY = ("official_usd", "contract_usd", "shadow_official_usd")
COLUMNS = ("calls", "images", *MONEY, "unpriced_calls")


@dataclass(frozen=True)
class Period:
    """UTC days, both ends inclusive; None = unbounded."""

    since: date | None = None
    until: date | None = None

    def where(self) -> tuple[str, list[object]]:
        """The same period twice: on ``started_at``, so DuckDB skips row groups by their min/max, and on
        ``call_day``, which it also pushes into the contract lookup (stg_contract_card)."""
        clauses: list[str] = []
        params: list[object] = []
        if self.since is not None:
            clauses += ["started_at >= ?", "call_day >= ?"]
            params += [datetime.combine(self.since, time(), UTC), self.since]
        if self.until is not None:
            clauses += ["started_at < ?", "call_day <= ?"]
            params += [datetime.combine(self.until + timedelta(days=1), time(), UTC), self.until]
        return (" where " + " and ".join(clauses) if clauses else ""), params

    def describe(self) -> str:
        return f"{self.since or 'first call'} to {self.until or 'last call'} (UTC days)"


def spend_report(con: duckdb.DuckDBPyConnection, *, by: str = "day", period: Period = Period()) -> pl.DataFrame:
    """One row per group: ``by`` column then COLUMNS, ordered by the group."""
    where, params = period.where()
    sql = f"""
        select
            {GROUPS[by]} as {by},
            count(*)::bigint as calls,
            coalesce(sum(images_returned), 0)::bigint as images,
            sum(billed_cost_usd) filter (where cost_basis = 'official_rates') as official_usd,
            sum(billed_cost_usd) filter (where cost_basis = 'provider_contract') as contract_usd,
            sum(official_cost_usd) filter (where cost_basis = 'provider_contract') as shadow_official_usd,
            count(*) filter (where pricing_status <> 'priced')::bigint as unpriced_calls
        from priced_calls{where}
        group by all
        order by 1
    """
    return read_sql(con, sql, params).with_columns(pl.col(MONEY).cast(pl.Float64))


def unpriced_breakdown(con: duckdb.DuckDBPyConnection, period: Period = Period()) -> dict[str, int]:
    """Unpriced calls per pricing_status (no_contract, no_fx_rate, unpriced_model, missing_usage)."""
    where, params = period.where()
    where += (" and " if where else " where ") + "pricing_status <> 'priced'"
    frame = read_sql(
        con, f"select pricing_status, count(*)::bigint as n from priced_calls{where} group by 1 order by 1", params
    )
    return dict(zip(frame["pricing_status"], frame["n"], strict=True))


def books_loaded(con: duckdb.DuckDBPyConnection) -> tuple[str, datetime] | None:
    """(version, loaded_at) of the price books the ledger prices with."""
    rows = con.execute("select version, loaded_at from price_book_loads order by loaded_at desc limit 1").fetchall()
    return (rows[0][0], rows[0][1]) if rows else None


def totals(report: pl.DataFrame) -> dict[str, float | int | None]:
    """Column sums; a money total is None when no group had a figure (nothing priced), not 0."""
    out: dict[str, float | int | None] = {c: int(report[c].sum()) for c in ("calls", "images", "unpriced_calls")}
    for column in MONEY:
        out[column] = float(report[column].sum()) if report[column].null_count() < report.height else None
    return out
