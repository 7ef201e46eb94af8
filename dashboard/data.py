"""Read-only queries for the dashboard pages.

Every query opens the ledger ``read_only`` (DuckDB lets one writing process hold the file, so the
connection lives only as long as one query, see ``ledger/db.py``), fetches the result fully and
closes it again. Results are cached for a few seconds, so widgets can rerun the script freely
without reopening the file. A lock held by an ingest for longer than ``WAIT_S`` surfaces as
``LedgerBusy``; ``dashboard.app`` turns that into a "ledger busy, retrying" notice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import streamlit as st

from ledger import sqlfiles, stores
from ledger.db import NotALedger, connect, ledger_path
from ledger.query import read_sql

# Seconds a query waits for an ingest to release the file before the page shows "busy".
WAIT_S = 3.0
# Then the page says "ledger busy, retrying" and reruns itself this many times, this far apart.
BUSY_AUTO_RETRIES = 5
BUSY_RETRY_DELAY_S = 1.0
CACHE_TTL_S = 5


class LedgerState(enum.StrEnum):
    """What the dashboard found at the ledger path."""

    MISSING = "missing"  # no file there
    UNINITIALISED = "uninitialised"  # a DuckDB file without the imagecost schema
    EMPTY = "empty"  # schema present, no calls yet
    READY = "ready"


def ledger_file() -> str:
    """The ledger the dashboard reads: ``$IMAGECOST_LEDGER`` (set by ``imagecost dashboard``), else the default."""
    return str(ledger_path(None).resolve())


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def fetch(ledger: str, sql: str, params: tuple[object, ...] = ()) -> pl.DataFrame:
    """Run one read-only query and return its (already aggregated, small) result."""
    con = connect(ledger, read_only=True, wait_s=WAIT_S)
    try:
        return read_sql(con, sql, list(params) if params else None)
    finally:
        con.close()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def ledger_state(ledger: str) -> LedgerState:
    """Missing / uninitialised / empty / ready — decides between the first-run page and the real pages."""
    if not Path(ledger).is_file():
        return LedgerState.MISSING
    try:
        con = connect(ledger, read_only=True, wait_s=WAIT_S)
    except (duckdb.IOException, NotALedger):  # not a DuckDB file at all (a lock error arrives as LedgerBusy)
        return LedgerState.UNINITIALISED
    try:
        tables = {row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()}
        if "calls" not in tables:
            return LedgerState.UNINITIALISED
        has_calls = con.execute("select exists (select 1 from calls)").fetchall()[0][0]
        return LedgerState.READY if has_calls else LedgerState.EMPTY
    finally:
        con.close()


def today_utc() -> date:
    """The ledger's "today": the current UTC day (calls are dated by their UTC day)."""
    return datetime.now(UTC).date()


def default_period(days: int = 30) -> tuple[date, date]:
    """The last ``days`` UTC days, today included."""
    end = today_utc()
    return end - timedelta(days=days - 1), end


@dataclass(frozen=True)
class LedgerSummary:
    calls: int
    latest: datetime
    behind: tuple[str, ...]  # stores not up to date: the pages compute those figures live (slower)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def ledger_summary(ledger: str) -> LedgerSummary:
    """How many calls the ledger holds, when the latest started, and which stores are behind (sidebar)."""
    con = connect(ledger, read_only=True, wait_s=WAIT_S)
    try:
        calls, latest = con.execute("select count(*)::bigint, max(started_at) from calls").fetchall()[0]
        try:
            behind = tuple(sorted(set(sqlfiles.stores()) - set(stores.fresh(con))))
        except duckdb.Error:  # a ledger from before stores: the pages say if it needs `imagecost init`
            behind = ()
    finally:
        con.close()
    return LedgerSummary(calls=int(calls), latest=latest, behind=behind)
