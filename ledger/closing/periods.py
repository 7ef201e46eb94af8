"""Close and reopen UTC months: freeze a month's booked rows, record append-only period events.

A close copies the month's rows of ``booked_calls`` (its calls priced now, plus the adjustments to earlier
closed months booked into it) into ``frozen_calls`` under a new ``close_id`` and records a 'closed' event.
From then on ``booked_calls`` reads the month from those frozen rows; any later difference (a late call, a
price-book change) becomes an adjustment in the first open month after it. A reopen records a 'reopened'
event: the month reads live again, and the frozen rows stay in the table, superseded (docs/closing.md).
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from ledger.closing.months import label, month_of, next_month
from ledger.db import transaction
from ledger.errors import UserError
from ledger.pricebook import loaded_version


@dataclass(frozen=True)
class PeriodEvent:
    """One row of ``period_events``."""

    event_id: int
    month: date
    event: str  # closed | reopened
    close_id: int
    event_at: datetime
    by_user: str
    reason: str | None
    price_book_version: str | None
    row_count: int
    calls: int
    adjustments: int
    unpriced_rows: int
    images: int
    official_usd: float | None  # billed_cost_usd of OpenAI-routed rows
    contract_usd: float | None  # billed_cost_usd of provider-routed rows (USD)
    billed_usd: float | None


@dataclass(frozen=True)
class ClosedMonth:
    """A month that is closed now (a row of the ``close_current`` view)."""

    month: date
    close_id: int
    closed_at: datetime
    closed_by: str
    price_book_version: str | None
    adjust_into: date  # first day of the first open month after it: where its adjustments are booked


# The event's figures over a set of booked rows, summed as imagecost report sums them. Money: 0 for a month
# without rows, null when none of its rows is priced (never a silent $0).
_TOTALS = """
    count(*)::bigint,
    coalesce(sum(call_count), 0)::bigint,
    count(*) filter (where booking_kind = 'adjustment')::bigint,
    count(*) filter (where pricing_status <> 'priced')::bigint,
    coalesce(sum(images_returned), 0)::bigint,
    case when count(*) = 0 then 0 else sum(billed_cost_usd) filter (where cost_basis = 'official_rates') end,
    case when count(*) = 0 then 0 else sum(billed_cost_usd) filter (where cost_basis = 'provider_contract') end,
    case when count(*) = 0 then 0 else sum(billed_cost_usd) end
"""


def os_user() -> str:
    """The OS user running the command (recorded as ``by_user``)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"uid {os.getuid()}"


def closed_months(con: duckdb.DuckDBPyConnection) -> list[ClosedMonth]:
    """The months closed now, oldest first."""
    rows = con.execute(
        "select month, close_id, closed_at, closed_by, price_book_version, adjust_into "
        "from close_current order by month"
    ).fetchall()
    return [ClosedMonth(*row) for row in rows]


def period_events(con: duckdb.DuckDBPyConnection, month: date | None = None) -> list[PeriodEvent]:
    """The period events (of one month, or all), in order."""
    where, params = (" where month = ?", [month]) if month is not None else ("", [])
    rows = con.execute(f"select * from period_events{where} order by event_id", params).fetchall()
    return [PeriodEvent(*row) for row in rows]


def close_month(
    con: duckdb.DuckDBPyConnection, month: date, *, today: date, by_user: str, reason: str | None = None
) -> PeriodEvent:
    """Freeze ``month`` (its first day) as it is booked now; UserError if it is not a past, open month."""
    month = month_of(month)
    current = month_of(today)
    if month > current:
        raise UserError(
            f"{label(month)} is in the future (today is {today} UTC); only a month that has ended can be closed"
        )
    if month == current:
        raise UserError(
            f"{label(month)} is the current month (today is {today} UTC); it can be closed from {next_month(month)} on"
        )
    with transaction(con):
        closed = {c.month: c for c in closed_months(con)}
        if month in closed:
            c = closed[month]
            raise UserError(
                f"{label(month)} is already closed (close #{c.close_id}, {c.closed_at:%Y-%m-%d %H:%M} UTC by "
                f"{c.closed_by}); to close it again, reopen it first: imagecost reopen {label(month)} --reason TEXT"
            )
        close_id = _next_id(con, "close_id")
        _freeze(con, close_id, month)
        totals = con.execute(f"select {_TOTALS} from frozen_calls where close_id = ?", [close_id]).fetchall()[0]
        adjusted = [c.month for c in closed.values() if c.adjust_into == month]
        event = _record(con, month, "closed", close_id, by_user, reason, totals)
        # what this close knew: lets booked_calls skip re-pricing these months until something changes
        con.execute(
            "insert into frozen_months select ?, month, pricing_inputs, calls from close_month_inputs "
            "where month in (select unnest(?::date[]))",
            [close_id, [month, *adjusted]],
        ).fetchall()
        return event


def reopen_month(con: duckdb.DuckDBPyConnection, month: date, *, by_user: str, reason: str | None) -> PeriodEvent:
    """Reopen a closed ``month``: it reads live again; its frozen rows stay, superseded."""
    month = month_of(month)
    if reason is None or not reason.strip():
        raise UserError(f"reopen needs --reason TEXT: say why {label(month)} is reopened (it is recorded)")
    with transaction(con):
        closed = {c.month: c for c in closed_months(con)}
        if month not in closed:
            which = ", ".join(label(m) for m in closed) or "none"
            raise UserError(f"{label(month)} is not closed, so there is nothing to reopen (closed months: {which})")
        later = [label(m) for m in closed if m > month]
        if later:
            # a later close may hold adjustments to this month's calls: reopening under it would count them twice
            raise UserError(
                f"{label(month)} cannot be reopened while a later month is closed ({', '.join(later)}); "
                f"reopen {later[-1]} first (newest first)"
            )
        # the event's figures are what the month reads once it is open again: record it, then fill them in
        event = _record(con, month, "reopened", closed[month].close_id, by_user, reason.strip(), _ZERO)
        totals = con.execute(
            f"select {_TOTALS} from booked_calls where booking_day >= ? and booking_day < ?",
            [month, next_month(month)],
        ).fetchall()[0]
        con.execute(
            "update period_events set row_count = ?, calls = ?, adjustments = ?, unpriced_rows = ?, images = ?, "
            "official_usd = ?, contract_usd = ?, billed_usd = ? where event_id = ?",
            [*totals, event.event_id],
        ).fetchall()
        return period_events(con, month)[-1]


_ZERO = (0, 0, 0, 0, 0, None, None, None)


def _next_id(con: duckdb.DuckDBPyConnection, column: str) -> int:
    return int(con.execute(f"select coalesce(max({column}), 0) + 1 from period_events").fetchall()[0][0])


def _freeze(con: duckdb.DuckDBPyConnection, close_id: int, month: date) -> None:
    """Copy the month's booked rows (all live or adjustments: the month is open) into frozen_calls."""
    frozen = [row[0] for row in con.execute("select name from pragma_table_info('frozen_calls')").fetchall()]
    columns = ", ".join(f'"{name}"' for name in frozen if name not in ("close_id", "booking_kind"))
    con.execute(
        f"insert into frozen_calls by name "
        f"select ?::bigint as close_id, "
        f"case when booking_kind = 'live' then 'frozen' else booking_kind end as booking_kind, {columns} "
        f"from booked_calls where booking_day >= ? and booking_day < ?",
        [close_id, month, next_month(month)],
    ).fetchall()


def _record(
    con: duckdb.DuckDBPyConnection,
    month: date,
    event: str,
    close_id: int,
    by_user: str,
    reason: str | None,
    totals: tuple[object, ...],
) -> PeriodEvent:
    event_id = _next_id(con, "event_id")
    con.execute(
        "insert into period_events values (?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [event_id, month, event, close_id, by_user, reason, loaded_version(con), *totals],
    ).fetchall()
    return period_events(con, month)[-1]
