"""Insert observed facts (calls, attempts, images) into the ledger, in Arrow/polars batches.

    from ledger.facts import insert_calls
    added = insert_calls(con, frame)   # polars.DataFrame or pyarrow.Table; returns rows added

Columns are matched by name; a column the batch lacks gets the table's default (null for most).
Each insert is idempotent: rows whose key is already in the table are skipped by an anti-join
(calls: ``call_id``; attempts: ``call_id, attempt_number``; images: ``call_id, image_index``),
and a key repeated inside the batch is inserted once. One transaction per call, unless the
caller already opened one (then the insert joins it, e.g. calls + attempts + images of one file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from ledger.db import transaction

if TYPE_CHECKING:  # polars costs ~0.4 s to import; ingest, the main caller, passes Arrow tables
    from typing import TypeAlias

    import polars as pl

    Batch: TypeAlias = pl.DataFrame | pa.Table

# table -> the columns that identify a row
KEYS = {"calls": ("call_id",), "attempts": ("call_id", "attempt_number"), "images": ("call_id", "image_index")}


def insert_calls(con: duckdb.DuckDBPyConnection, batch: Batch, *, known_new: bool = False) -> int:
    """Add calls whose ``call_id`` is new; returns how many were added.

    ``known_new``: the caller already looked the keys up in this transaction (ingest does, for the whole batch):
    skip the anti-join against the table, whose cost grows with the ledger. Keys repeated in the batch still go
    in once.
    """
    return _insert(con, "calls", batch, known_new)


def insert_attempts(con: duckdb.DuckDBPyConnection, batch: Batch, *, known_new: bool = False) -> int:
    """Add attempts whose ``(call_id, attempt_number)`` is new; returns how many were added."""
    return _insert(con, "attempts", batch, known_new)


def insert_images(con: duckdb.DuckDBPyConnection, batch: Batch, *, known_new: bool = False) -> int:
    """Add image pointers whose ``(call_id, image_index)`` is new; returns how many were added."""
    return _insert(con, "images", batch, known_new)


def _insert(con: duckdb.DuckDBPyConnection, table: str, batch: Batch, known_new: bool) -> int:
    incoming = batch if isinstance(batch, pa.Table) else batch.to_arrow()  # a polars DataFrame
    if incoming.num_rows == 0:
        return 0
    known = {row[0] for row in con.execute(f"select name from pragma_table_info('{table}')").fetchall()}
    unknown = [name for name in incoming.column_names if name not in known]
    if unknown:
        raise ValueError(
            f"{table}: no such column(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}"
        )
    keys = KEYS[table]
    missing = [key for key in keys if key not in incoming.column_names]
    if missing:
        raise ValueError(f"{table}: the batch needs key column(s) {', '.join(missing)}")
    columns = ", ".join(f'"{name}"' for name in incoming.column_names)
    on = " and ".join(f't."{key}" = b."{key}"' for key in keys)
    partition = ", ".join(f'"{key}"' for key in keys)
    # `incoming` is read by name from the SQL below (DuckDB's replacement scan of Python variables)
    with transaction(con):
        # the unique check is one hash aggregate; the de-duplicating window runs only when needed
        unique = con.execute(f"select count(*) = count(distinct ({partition})) from incoming").fetchall()[0][0]
        deduped = f"(select * from incoming qualify row_number() over (partition by {partition}) = 1)"
        source = "incoming" if unique else deduped
        new = "" if known_new else f" where not exists (select 1 from {table} as t where {on})"
        rows = con.execute(f"insert into {table} by name select {columns} from {source} as b{new}").fetchall()
    return int(rows[0][0])
