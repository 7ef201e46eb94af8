"""Stores: tables that keep what an expensive view computed, so a 10M-call ledger reads fast.

A view file with a ``-- store: NAME`` line (``sql/views/priced_calls_live.sql`` says ``-- store:
priced_calls``) computes its rows live, from the facts and the price books. ``NAME`` is the view every
reader uses (``ledger.sqlfiles.STORE_VIEW``): it reads the table ``NAME_store`` on a connection where
``use_fresh`` found that store up to date, and the live view everywhere else. Up to date means that
``store_state`` recorded the ledger's current inputs (``ledger_inputs``: the counts of calls, attempts
and period events, all append-only, and a hash of the price books). So a store makes reads faster but never
changes an answer: after a crash, a direct insert or a price-book edit, readers compute live until the
next refresh.

Only read-only connections use stores: such a connection holds the file against every writer, so the
check made when it opens stays true while it is open (``ledger.db.connect``).

``refresh`` brings every store up to date in one transaction. A store whose rows have a ``call_id`` (each
row belongs to one call) gets the rows of the calls ingested since the last refresh appended. A store
declared ``(by day)`` (an aggregate per UTC day, such as the spend cube) has the days from the first new
call's day on recomputed. Both need the same price books (and, by day, the same closes) as the last refresh,
and new calls that add up; otherwise, and for every other store, it is rebuilt. ``imagecost ingest``
refreshes after its batches, ``init`` after loading the price books, ``close`` / ``reopen`` after changing
the booked rows; ``imagecost refresh`` on demand.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb

from ledger import db, sqlfiles

log = logging.getLogger(__name__)

# The store with exactly one row per call: after an append its rows must equal the calls.
ONE_ROW_PER_CALL = "priced_calls"


@dataclass(frozen=True)
class Inputs:
    """One row of the ``ledger_inputs`` view."""

    calls: int
    attempts: int
    period_events: int
    calls_ingested_through: datetime | None
    price_books: int

    def key(self) -> tuple[int, int, int, int]:
        """What a store must have been refreshed with to be read."""
        return (self.calls, self.attempts, self.period_events, self.price_books)


@dataclass
class RefreshResult:
    appended: dict[str, int] = field(default_factory=dict)  # store -> rows appended
    recomputed: dict[str, tuple[date, int]] = field(default_factory=dict)  # by-day store -> (first day, rows)
    rebuilt: dict[str, int] = field(default_factory=dict)  # store -> rows after a rebuild

    @property
    def changed(self) -> bool:
        return bool(self.appended or self.recomputed or self.rebuilt)

    def summary(self) -> str:
        if not self.changed:
            return "stores already up to date"
        parts = [f"{store} +{rows:,} row(s)" for store, rows in self.appended.items()]
        parts += [f"{store} from {day} ({rows:,} row(s))" for store, (day, rows) in self.recomputed.items()]
        parts += [f"{store} rebuilt ({rows:,} row(s))" for store, rows in self.rebuilt.items()]
        return "stores refreshed: " + ", ".join(parts)


def table(store: str) -> str:
    return f"{store}_store"


def variable(store: str) -> str:
    return sqlfiles.STORE_VARIABLE.format(store=store)


def ensure_table(con: duckdb.DuckDBPyConnection, store: str, live: str) -> None:
    """Create ``store``'s table with the live view's columns; recreate it (empty, stale) when they changed."""
    wanted = con.execute(f"describe select * from {live}").fetchall()
    exists = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() and table_name = ?",
        [table(store)],
    ).fetchall()[0][0]
    if exists and con.execute(f"describe select * from {table(store)}").fetchall() == wanted:
        return
    # derived data only: dropping it loses nothing (readers compute live until the next refresh)
    con.execute(f"create or replace table {table(store)} as select * from {live} limit 0")
    con.execute("delete from store_state where store = ?", [store])


def tables_match(con: duckdb.DuckDBPyConnection) -> bool:
    """Every store table exists with its live view's columns (names and types, in order), read from the catalog."""
    live = sqlfiles.stores()
    wanted = [*live.values(), *(table(store) for store in live)]
    columns = dict(
        con.execute(
            "select table_name, list((column_name, data_type) order by column_index) from duckdb_columns() "
            "where database_name = current_database() and schema_name = 'main' and table_name in (select unnest(?)) "
            "group by table_name",
            [wanted],
        ).fetchall()
    )
    return all(table(store) in columns and columns[table(store)] == columns.get(view) for store, view in live.items())


def inputs(con: duckdb.DuckDBPyConnection) -> Inputs:
    row = con.execute(
        "select calls, attempts, period_events, calls_ingested_through, price_books from ledger_inputs"
    ).fetchall()[0]
    return Inputs(*row)


def _state(con: duckdb.DuckDBPyConnection) -> dict[str, Inputs]:
    rows = con.execute(
        "select store, calls, attempts, period_events, calls_ingested_through, price_books from store_state"
    )
    return {row[0]: Inputs(*row[1:]) for row in rows.fetchall()}


def _up_to_date(state: Inputs | None, now: Inputs) -> bool:
    return state is not None and state.key() == now.key()


def _per_call(con: duckdb.DuckDBPyConnection, store: str) -> bool:
    """Whether the store's rows belong to one call each (then new calls' rows can be appended)."""
    columns = con.execute(f"describe {table(store)}").fetchall()
    return any(column[0] == "call_id" for column in columns)


def fresh(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The stores that hold exactly what their live views would compute now."""
    now, state = inputs(con), _state(con)
    return [store for store in sqlfiles.stores() if _up_to_date(state.get(store), now)]


def use_fresh(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Make this (read-only) connection read every up-to-date store instead of its live view."""
    try:
        stores = fresh(con)
    except duckdb.Error:  # not an imagecost ledger, or one from before stores: everything reads live
        return []
    for store in stores:
        con.execute(f"set variable {variable(store)} = '{table(store)}'")
    return stores


def refresh(con: duckdb.DuckDBPyConnection, *, rebuild: bool = False) -> RefreshResult:
    """Bring every store up to date with the ledger, in one transaction (a writable connection)."""
    live, by_day = sqlfiles.stores(), sqlfiles.stores_by_day()
    # dependency order: a store's live view may read an earlier store, which is up to date by then
    order = [name for name, _sql in sqlfiles.views() if name in live]
    result = RefreshResult()
    try:
        with db.transaction(con):
            now, state = inputs(con), _state(con)
            since = None if rebuild else _appendable_since(con, state.get(ONE_ROW_PER_CALL), now)
            first_day: list[date | None] = []  # the new calls' first UTC day, once priced_calls has them
            for store in order:
                started = time.perf_counter()
                current = state.get(store)
                if not rebuild and _up_to_date(current, now):
                    pass
                elif since is not None and _can_append(con, store, current, since, now):
                    result.appended[store] = con.execute(
                        f"insert into {table(store)} select * from {live[store]} "
                        "where call_id in (select call_id from _new_calls)"
                    ).fetchall()[0][0]
                    _record(con, store, now, rebuilt=False)
                elif (
                    since is not None
                    and store in by_day
                    and _can_recompute_days(current, since, now)
                    and (day := _first_new_day(con, first_day)) is not None
                ):
                    con.execute(f"delete from {table(store)} where day >= ?", [day])
                    rows = con.execute(
                        f"insert into {table(store)} select * from {live[store]} where day >= ?", [day]
                    ).fetchall()[0][0]
                    result.recomputed[store] = (day, rows)
                    _record(con, store, now, rebuilt=False)
                else:
                    con.execute(f"delete from {table(store)}")
                    result.rebuilt[store] = con.execute(
                        f"insert into {table(store)} select * from {live[store]}"
                    ).fetchall()[0][0]
                    _record(con, store, now, rebuilt=True)
                con.execute(f"set variable {variable(store)} = '{table(store)}'")
                if store in result.appended or store in result.recomputed or store in result.rebuilt:
                    log.info("store %s refreshed in %.2fs", store, time.perf_counter() - started)
            con.execute("drop table if exists _new_calls")
    finally:
        for store in order:  # a writer reads live again
            con.execute(f"reset variable {variable(store)}")
    if result.changed:
        log.info("%s", result.summary())
    return result


@dataclass(frozen=True)
class _Since:
    value: datetime | None  # the newest calls.ingested_at the stores had seen (None: no call yet)


def _can_append(con: duckdb.DuckDBPyConnection, store: str, current: Inputs | None, since: _Since, now: Inputs) -> bool:
    """A per-call store refreshed with today's price books up to the same ingest time as the priced calls."""
    return (
        current is not None
        and current.price_books == now.price_books
        and current.calls_ingested_through == since.value
        and _per_call(con, store)
    )


def _can_recompute_days(current: Inputs | None, since: _Since, now: Inputs) -> bool:
    """A by-day store refreshed with today's price books and closes up to the same ingest time as the priced
    calls: only the new calls' days (and later ones, where adjustments are booked) can differ."""
    return (
        current is not None
        and current.price_books == now.price_books
        and current.period_events == now.period_events
        and current.calls_ingested_through == since.value
    )


def _first_new_day(con: duckdb.DuckDBPyConnection, cache: list[date | None]) -> date | None:
    """The first UTC day of the calls in ``_new_calls`` (None: no new call), from the refreshed priced calls."""
    if not cache:
        cache.append(
            con.execute(
                f"select min(call_day) from {ONE_ROW_PER_CALL} where call_id in (select call_id from _new_calls)"
            ).fetchall()[0][0]
        )
    return cache[0]


def _appendable_since(con: duckdb.DuckDBPyConnection, priced: Inputs | None, now: Inputs) -> _Since | None:
    """When per-call stores refreshed with the same price books as now can be brought up to date by appending
    the calls ingested after ``value`` (those calls' ids are left in the temp table ``_new_calls``): when they
    are exactly the calls the one-row-per-call store misses. None: they must be rebuilt."""
    if priced is None or priced.price_books != now.price_books:
        return None
    con.execute(
        "create or replace temp table _new_calls as "
        "select call_id from calls where ingested_at > coalesce(?, '-infinity'::timestamptz)",
        [priced.calls_ingested_through],
    )
    new = con.execute("select count(*) from _new_calls").fetchall()[0][0]
    stored = con.execute(f"select count(*) from {table(ONE_ROW_PER_CALL)}").fetchall()[0][0]
    return _Since(priced.calls_ingested_through) if stored + new == now.calls else None


def _record(con: duckdb.DuckDBPyConnection, store: str, now: Inputs, *, rebuilt: bool) -> None:
    con.execute(
        """
        insert or replace into store_state by name
        select ? as store, ? as calls, ? as attempts, ? as period_events, ? as price_books,
            ? as calls_ingested_through, now() as refreshed_at,
            case when ? then now() else coalesce((select rebuilt_at from store_state where store = ?), now()) end
                as rebuilt_at
        """,
        [
            store,
            now.calls,
            now.attempts,
            now.period_events,
            now.price_books,
            now.calls_ingested_through,
            rebuilt,
            store,
        ],
    )
