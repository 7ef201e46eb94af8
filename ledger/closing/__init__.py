"""Closed periods: freeze a finished UTC month so its figures never change; later changes become adjustments.

    from ledger.closing import close_month, os_user, parse_month, reopen_month, today
    event = close_month(con, parse_month("2026-10"), today=today(), by_user=os_user())  # today(): UTC date
    reopen_month(con, parse_month("2026-10"), by_user=os_user(), reason="late gateway invoice")

Reports read ``booked_calls`` (sql/views/booked_calls.sql): a closed month from its frozen rows, an open
month live, plus adjustments (late calls, re-pricing) for closed months booked into the first open month
after them. The rules are in docs/closing.md.
"""

from __future__ import annotations

from ledger.closing.months import AS_OF_ENV, label, next_month, parse_month, today
from ledger.closing.periods import (
    ClosedMonth,
    PeriodEvent,
    close_month,
    closed_months,
    os_user,
    period_events,
    reopen_month,
)

__all__ = [
    "AS_OF_ENV",
    "ClosedMonth",
    "PeriodEvent",
    "close_month",
    "closed_months",
    "label",
    "next_month",
    "os_user",
    "parse_month",
    "period_events",
    "reopen_month",
    "today",
]
