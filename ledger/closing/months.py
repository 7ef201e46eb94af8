"""UTC months as the closing commands name them (``YYYY-MM``), and which month is the current one."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime

from ledger.errors import UserError

AS_OF_ENV = "IMAGECOST_AS_OF"
"""Today's UTC date (YYYY-MM-DD) for ``close``: which month is current. For tests and backfills only."""

_MONTH = re.compile(r"(\d{4})-(\d{2})")


def parse_month(text: str) -> date:
    """``"2026-10"`` -> ``date(2026, 10, 1)``; UserError for anything else."""
    match = _MONTH.fullmatch(text.strip())
    if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
        raise UserError(f"bad month {text!r}: expected YYYY-MM, e.g. 2026-10")
    return date(int(match[1]), int(match[2]), 1)


def label(month: date) -> str:
    """``date(2026, 10, 1)`` -> ``"2026-10"``."""
    return f"{month:%Y-%m}"


def next_month(month: date) -> date:
    """First day of the month after ``month``."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_of(day: date) -> date:
    """First day of the month ``day`` is in."""
    return day.replace(day=1)


def today(as_of: str | None = None) -> date:
    """``as_of`` (YYYY-MM-DD), else ``$IMAGECOST_AS_OF``, else today's UTC date."""
    text = as_of or os.environ.get(AS_OF_ENV)
    if not text:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"bad --as-of {text!r}: expected a UTC date YYYY-MM-DD, e.g. 2026-11-24") from None
