"""Spend so far from the ledger, per budget and period: ``priced_calls.billed_cost_usd`` of priced calls.

One query reads the calls of a time window grouped by UTC day, route owner, requested model and the values of
the tags the budgets name; each budget then sums the groups its scope matches (``Budget.matches``, the same
test the guard applies to a request), so the CLI and the guard count exactly alike. Unpriced calls are counted,
never summed as $0; calls the guard blocked (``error.type`` BudgetExceeded: never sent, cost nothing) are
counted apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from collector import semconv as sc
from ledger.budgets.config import Budget, Period
from ledger.query import read_sql

SPEND_SQL = """
select
    call_day,
    route_owner,
    requested_model,
    [{tag_values}] as tag_values,
    coalesce(sum(billed_cost_usd) filter (where pricing_status = 'priced'), 0)::double as spent_usd,
    count(*) filter (where error_type is distinct from $blocked)::bigint as calls,
    count(*) filter (where pricing_status <> 'priced' and error_type is distinct from $blocked)::bigint
        as unpriced_calls,
    count(*) filter (where error_type = $blocked)::bigint as blocked_calls
from priced_calls
where started_at >= $since and started_at < $until and call_day >= $since_day
group by all
"""


@dataclass(frozen=True)
class SpendRow:
    """Ledger calls of one UTC day, route owner, requested model and tag set."""

    day: date
    route_owner: str
    model: str | None
    tags: dict[str, str]  # only the tags some budget names
    spent_usd: float  # priced calls only
    calls: int  # calls sent (blocked ones excluded)
    unpriced_calls: int
    blocked_calls: int


@dataclass
class Spend:
    """A budget's spend in one period."""

    spent_usd: float = 0.0
    calls: int = 0
    unpriced_calls: int = 0
    blocked_calls: int = 0


def tag_keys(budgets: Iterable[Budget]) -> list[str]:
    """The tag keys the budgets' scopes name (the only tags the spend query reads)."""
    return sorted({key for budget in budgets for key in budget.tags})


def read_spend(
    con: duckdb.DuckDBPyConnection, since: datetime, until: datetime, tags: Sequence[str] = ()
) -> list[SpendRow]:
    """Grouped spend of the calls started in ``[since, until)``, keeping the values of the tags ``tags``."""
    params: dict[str, object] = {
        "blocked": sc.ERROR_TYPE_BUDGET_EXCEEDED,
        "since": since,
        "until": until,
        "since_day": since.date(),
    }
    values = []
    for i, key in enumerate(tags):
        params[f"tag_{i}"] = '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
        values.append(f"json_extract_string(tags, $tag_{i})")
    sql = SPEND_SQL.format(tag_values=", ".join(values))
    return [
        SpendRow(
            day=row["call_day"],
            route_owner=row["route_owner"],
            model=row["requested_model"],
            tags={key: value for key, value in zip(tags, row["tag_values"], strict=True) if value is not None},
            spent_usd=row["spent_usd"],
            calls=row["calls"],
            unpriced_calls=row["unpriced_calls"],
            blocked_calls=row["blocked_calls"],
        )
        for row in read_sql(con, sql, params).iter_rows(named=True)
    ]


def ingested(con: duckdb.DuckDBPyConnection, call_ids: Sequence[str]) -> set[str]:
    """Which of ``call_ids`` the ledger already holds."""
    if not call_ids:
        return set()
    rows = con.execute("select call_id from calls where call_id in (select unnest($ids))", {"ids": list(call_ids)})
    return {row[0] for row in rows.fetchall()}


def spend_for(budget: Budget, period: Period, rows: Iterable[SpendRow]) -> Spend:
    """What ``rows`` add up to for ``budget`` within ``period``."""
    total = Spend()
    first, last = period.start.date(), period.end.date()
    for row in rows:
        if first <= row.day < last and budget.matches(row.route_owner, row.model, row.tags):
            total.spent_usd += row.spent_usd
            total.calls += row.calls
            total.unpriced_calls += row.unpriced_calls
            total.blocked_calls += row.blocked_calls
    return total
