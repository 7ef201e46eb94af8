"""Budgets: spending limits per UTC day or month, enforced before calls are sent and reported from the ledger.

In the app (the collector asks the guard before each image call; ``collector.guard`` has the protocol)::

    import collector
    from ledger.budgets import BudgetGuard

    guard = BudgetGuard.from_files(budgets="budgets.toml", ledger="imagecost.duckdb")
    collector.instrument(client, guard=guard)
    try:
        client.images.generate(model="gpt-image-2", prompt="...", size="1024x1024", quality="high")
    except collector.BudgetExceeded as exc:   # a hard budget would be overrun: nothing was sent
        ...

From cron or CI: ``imagecost budgets --budgets budgets.toml`` (exit 2 when a hard budget is exceeded).
The file format: :mod:`ledger.budgets.config` and ``ledger/books/budgets.example.toml``.
"""

from __future__ import annotations

from ledger.budgets.config import (
    BUDGETS_ENV,
    Budget,
    Budgets,
    Period,
    budgets_path,
    load_budgets,
    period_at,
)
from ledger.budgets.guard import BudgetGuard
from ledger.budgets.status import BudgetStatus, budget_statuses

__all__ = [
    "BUDGETS_ENV",
    "Budget",
    "BudgetGuard",
    "BudgetStatus",
    "Budgets",
    "Period",
    "budget_statuses",
    "budgets_path",
    "load_budgets",
    "period_at",
]
