"""Where each budget stands: spend so far this period, and a forecast to the period's end.

Forecast: a linear run-rate over the elapsed part of the period, ``spent / elapsed``, where ``elapsed`` is the
fraction of the UTC day or month gone by at ``as_of`` (at 06:00 UTC, $3 spent forecasts $12 for the day).
Early in a period it swings widely; it is a trend, not a promise. Spend is ``priced_calls.billed_cost_usd`` of
priced calls; unpriced calls are counted apart (never as $0), and so are calls the guard blocked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import duckdb

from ledger.budgets.config import Budget, Period, period_at
from ledger.budgets.spend import read_spend, spend_for, tag_keys

State = Literal["ok", "forecast_over", "exceeded"]


@dataclass(frozen=True)
class BudgetStatus:
    """One budget at ``as_of``."""

    budget: Budget
    period: Period
    spent_usd: float
    calls: int  # calls sent in scope this period (blocked ones excluded)
    unpriced_calls: int  # in scope, not in spent_usd
    blocked_calls: int  # refused by the guard, never sent
    forecast_usd: float

    @property
    def state(self) -> State:
        limit = self.budget.limit_usd
        return "exceeded" if self.spent_usd > limit else "forecast_over" if self.forecast_usd > limit else "ok"

    @property
    def used(self) -> float:
        return self.spent_usd / self.budget.limit_usd

    def to_json(self) -> dict[str, Any]:
        b = self.budget
        return {
            "name": b.name,
            "mode": b.mode,
            "scope": {"route_owner": b.route_owner, "model": b.model, "tags": dict(b.tags)},
            "period": {
                "kind": self.period.kind,
                "label": self.period.label,
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
            },
            "limit_usd": b.limit_usd,
            "spent_usd": self.spent_usd,
            "used": self.used,
            "forecast_usd": self.forecast_usd,
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
            "blocked_calls": self.blocked_calls,
            "state": self.state,
        }


def budget_statuses(con: duckdb.DuckDBPyConnection, budgets: Sequence[Budget], as_of: datetime) -> list[BudgetStatus]:
    """Every budget's current period at ``as_of`` (calls started before ``as_of`` only), in file order."""
    if not budgets:
        return []
    periods = [period_at(b.period, as_of) for b in budgets]
    rows = read_spend(con, min(p.start for p in periods), as_of, tag_keys(budgets))
    statuses = []
    for budget, period in zip(budgets, periods, strict=True):
        spend = spend_for(budget, period, rows)
        elapsed = period.elapsed(as_of)
        statuses.append(
            BudgetStatus(
                budget=budget,
                period=period,
                spent_usd=spend.spent_usd,
                calls=spend.calls,
                unpriced_calls=spend.unpriced_calls,
                blocked_calls=spend.blocked_calls,
                forecast_usd=spend.spent_usd / elapsed if elapsed > 0 else spend.spent_usd,
            )
        )
    return statuses
