"""Open the DuckDB ledger, apply migrations, (re)create views.

Locking policy (DuckDB allows one writing process per file, and while it holds the file no other
process may open it, not even read-only):

* writers (``init``, ``ingest``, price-book loads) open the file, do one short transaction per
  batch and close it again, so the file is free between batches;
* readers (dashboard, report) open it ``read_only`` per query;
* both retry for a while on the lock error instead of failing (``open_ledger(..., wait_s=...)``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ledger import sqlfiles
from ledger.errors import UserError

DEFAULT_LEDGER = "imagecost.duckdb"
LEDGER_ENV = "IMAGECOST_LEDGER"


class LedgerMissing(UserError):
    """The ledger file does not exist (read-only commands say how to create one)."""


class NotALedger(UserError):
    """The path is a data file DuckDB would read as a table (an in-memory database), not a ledger."""


class LedgerBusy(UserError):
    """Another process held the ledger for longer than we were willing to wait."""


def ledger_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The ledger file: the argument, else ``$IMAGECOST_LEDGER``, else ``./imagecost.duckdb``."""
    return Path(path or os.environ.get(LEDGER_ENV) or DEFAULT_LEDGER)


def existing_ledger(path: str | os.PathLike[str] | None = None) -> Path:
    """``ledger_path(path)``, which must exist (``LedgerMissing`` says how to create it)."""
    file = ledger_path(path)
    if not file.exists():
        raise LedgerMissing(f"no ledger at {file}; create one with `imagecost init --ledger {file}`")
    return file


def _is_lock_error(exc: duckdb.Error) -> bool:
    return "lock" in str(exc).lower()


def connect(
    path: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    wait_s: float = 10.0,
) -> duckdb.DuckDBPyConnection:
    """Connect to the ledger, waiting up to ``wait_s`` seconds while another process holds it."""
    file = existing_ledger(path) if read_only else ledger_path(path)
    deadline = time.monotonic() + wait_s
    delay = 0.02
    while True:
        try:
            con = duckdb.connect(str(file), read_only=read_only)
            break
        except duckdb.CatalogException as exc:  # read-only: "Cannot launch in-memory database" (see below)
            raise _not_a_ledger(file) from exc
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                if _is_lock_error(exc):
                    raise LedgerBusy(f"ledger {file} is locked by another process (waited {wait_s:.0f}s)") from exc
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    # DuckDB opens a data file (.jsonl, .csv, .parquet, ...) as an in-memory database with a view over it:
    # every write would vanish when the connection closes.
    where = "select path from duckdb_databases() where database_name = current_database()"
    if con.execute(where).fetchall()[0][0] is None:
        con.close()
        raise _not_a_ledger(file)
    con.execute("set TimeZone = 'UTC'")
    if read_only:
        from ledger import stores  # stores opens its transactions with this module

        stores.use_fresh(con)
    return con


def _not_a_ledger(file: Path) -> NotALedger:
    return NotALedger(
        f"{file} is a data file, not a DuckDB ledger (DuckDB reads a .jsonl, .csv or .parquet file as a table); "
        "pass --ledger a .duckdb file (`imagecost init --ledger FILE` creates one)"
    )


@contextmanager
def open_ledger(
    path: str | os.PathLike[str] | None = None, *, read_only: bool = False, wait_s: float = 10.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """``with open_ledger() as con:`` — connect (migrating a writable ledger) and always close."""
    con = connect(path, read_only=read_only, wait_s=wait_s)
    try:
        if not read_only:
            migrate(con)
        yield con
    finally:
        con.close()


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """True inside an explicit ``begin``: there, two statements share one transaction id."""
    first, second = (con.execute("select txid_current()").fetchall()[0][0] for _ in range(2))
    return first == second


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """``with transaction(con):`` begin/commit (rollback on error), or join the caller's open transaction."""
    if in_transaction(con):
        yield
        return
    con.execute("begin")
    try:
        yield
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def applied_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the migrations recorded in ``_migrations``, in order."""
    con.execute("create table if not exists _migrations (name varchar primary key, applied_at timestamptz)")
    return [row[0] for row in con.execute("select name from _migrations order by name").fetchall()]


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet recorded, then recreate every view. Returns the names applied."""
    done = set(applied_migrations(con))
    applied: list[str] = []
    for name, sql in sqlfiles.migrations():
        if name in done:
            continue
        con.execute("begin")
        try:
            con.execute(sql)
            con.execute("insert into _migrations values (?, now())", [name])
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        applied.append(name)
    create_views(con)
    return applied


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every view from ``sql/views`` — views hold no data, so this is always safe.

    A store's table (``ledger.stores``) is created with its view, and emptied if its columns changed.
    Each view is tagged with a fingerprint of all the view files (its comment): when every view carries the
    current one and every store table still has its view's columns, nothing is recreated. DuckDB binds a
    view when it is created, so recreating them all costs ~1 s on every writer's open of a large ledger.
    """
    from ledger import stores

    views = sqlfiles.views()
    fingerprint = "imagecost " + hashlib.sha256(repr(views).encode()).hexdigest()[:16]
    tagged = dict(
        con.execute(
            "select view_name, comment from duckdb_views() "
            "where database_name = current_database() and schema_name = 'main' and not internal"
        ).fetchall()
    )
    if all(tagged.get(name) == fingerprint for name, _select in views) and stores.tables_match(con):
        return
    store_of = sqlfiles.stores()
    for name, select in views:
        if name in store_of:
            stores.ensure_table(con, name, store_of[name])
        con.execute(f"create or replace view {name} as\n{select}")
        con.execute(f"comment on view {name} is '{fingerprint}'")
