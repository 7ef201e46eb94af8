"""Plain-text tables and CSV for reconciliation results (the CLI's output)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import polars as pl


def cell(value: Any, column: str) -> str:
    """One value as the table shows it: money with 4 decimals, tokens and counts with separators."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if column.endswith(("tokens", "images", "requests")) else f"{value:,.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def table(frame: pl.DataFrame, columns: Sequence[str]) -> str:
    """A fixed-width table: text left-aligned, numbers right-aligned."""
    rows = [[cell(v, c) for v, c in zip(row, columns, strict=True)] for row in frame.select(columns).iter_rows()]
    numeric = [frame.schema[c].is_numeric() for c in columns]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def to_csv(frame: pl.DataFrame, columns: Sequence[str]) -> str:
    """CSV with a header; dates as ISO 8601, floats unrounded, nulls empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in frame.select(columns).iter_rows():
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, date | datetime) else v for v in row])
    return out.getvalue()
