"""Small presentation helpers shared by the pages: money formatting, column configs, filters, charts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from dashboard import data

UNTAGGED = "(untagged)"


def usd(amount: float | None, *, digits: int = 2) -> str:
    """``$1,234.57``; ``None`` (nothing priced) is shown as a dash, never as $0."""
    if amount is None:
        return "–"
    return f"-${-amount:,.{digits}f}" if amount < 0 else f"${amount:,.{digits}f}"


def money_column(label: str, *, help: str | None = None, digits: int = 2) -> Any:
    """A dollar column: ``$1,234.57`` (``digits`` > 2: ``$0.0527``); blank when nothing was priced."""
    fmt = "dollar" if digits == 2 else f"$%.{digits}f"
    return st.column_config.NumberColumn(label, help=help, format=fmt)


def count_column(label: str, *, help: str | None = None) -> Any:
    return st.column_config.NumberColumn(label, help=help, format="localized")


def seconds_column(label: str, *, help: str | None = None) -> Any:
    return st.column_config.NumberColumn(label, help=help, format="%.2f s")


def null_sum(column: str) -> pl.Expr:
    """Sum that stays null when every value is null (polars' ``sum`` would say 0, i.e. a fake $0)."""
    return pl.when(pl.col(column).count() > 0).then(pl.col(column).sum()).otherwise(None).alias(column)


def scalar(frame: pl.DataFrame, column: str) -> Any:
    """The single value of a one-row aggregate (``None`` for an empty frame)."""
    return frame[column][0] if frame.height else None


def period_input(key: str, *, label: str = "Period (UTC days)") -> tuple[date, date]:
    """A date-range input defaulting to the last 30 days; a half-picked range counts as one day."""
    start, end = data.default_period()
    picked = st.date_input(label, value=(start, end), key=key, format="YYYY-MM-DD")
    if isinstance(picked, tuple | list):
        if len(picked) == 2:
            return picked[0], picked[1]
        if len(picked) == 1:
            return picked[0], picked[0]
        return start, end
    return picked, picked


def pick_many(label: str, options: Sequence[str], *, key: str, placeholder: str) -> list[str]:
    """A multiselect where nothing selected means "all"."""
    return st.multiselect(label, list(options), key=key, placeholder=placeholder)


def in_clause(column: str, values: Sequence[object]) -> tuple[str, tuple[object, ...]]:
    """``and column in (?, ?)`` with its parameters, or nothing for an empty selection (= all)."""
    if not values:
        return "", ()
    marks = ", ".join("?" for _ in values)
    return f" and {column} in ({marks})", tuple(values)


def table(frame: pl.DataFrame, column_config: dict[str, Any], *, height: int | str = "content") -> None:
    """A read-only table showing exactly the configured columns, in that order; missing values as a dash."""
    st.dataframe(
        frame.select(list(column_config)),
        column_config=column_config,
        hide_index=True,
        width="stretch",
        height=height,  # type: ignore[arg-type]
        placeholder="–",
    )


def daily_bars(frame: pl.DataFrame, *, value: str, value_title: str, color: str, color_title: str, money: bool) -> None:
    """Stacked daily bars (``day`` on x), one colour per ``color`` value."""
    axis_format = "$,.2f" if money else ",d"
    # ISO date strings are read as UTC midnight by Vega; the utc time unit keeps the axis on UTC days
    days = frame.with_columns(pl.col("day").cast(pl.String))
    chart = (
        alt.Chart(days.to_pandas())
        .mark_bar(width=alt.RelativeBandSize(0.8))
        .encode(
            x=alt.X("utcyearmonthdate(day):T", title="Day (UTC)", axis=alt.Axis(format="%b %d")),
            y=alt.Y(f"{value}:Q", title=value_title, axis=alt.Axis(format=axis_format)),
            color=alt.Color(f"{color}:N", title=color_title),
            tooltip=[
                alt.Tooltip("utcyearmonthdate(day):T", title="Day", format="%Y-%m-%d"),
                alt.Tooltip(f"{color}:N", title=color_title),
                alt.Tooltip(f"{value}:Q", title=value_title, format=axis_format),
            ],
        )
        .properties(height=280)
    )
    st.altair_chart(chart, width="stretch")


def no_rows(what: str) -> None:
    st.caption(f"No {what} in this period.")
