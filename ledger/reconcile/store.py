"""Store imported bills in the ledger, idempotently: the same bucket imported twice is stored once.

A result's key is its bucket start plus its group-by fields (nulls included). Importing a key again
replaces the row (a later export of a day wins: OpenAI may still revise a recent day). Importing a day
with a different grouping than before replaces that day's rows, since both groupings together would
count the day twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
import polars as pl

from ledger.reconcile.bill import COST_KEYS, IMAGE_KEYS, BillRows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    costs_rows: int
    image_rows: int
    replaced_rows: int  # rows already stored for the same keys (or the same days, other grouping)


def _group_signature(frame: pl.DataFrame, keys: tuple[str, ...]) -> str:
    """The group-by fields the export used: those set on any of its rows, e.g. ``line_item,project_id``."""
    used = [key for key in keys if frame.get_column(key).is_not_null().any()]
    return ",".join(sorted(used))


def _upsert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, keys: tuple[str, ...], origin: str) -> int:
    """Delete rows with the incoming keys (and other groupings of the incoming days); insert. Returns deleted."""
    if frame.is_empty():
        return 0
    # A bucket repeated within one import (the same page exported twice) counts once: the last wins.
    incoming = frame.unique(subset=["start_time", *keys], keep="last", maintain_order=True).with_columns(
        pl.lit(_group_signature(frame, keys)).alias("group_by"), pl.lit(origin).alias("imported_from")
    )
    same_key = " and ".join(f"t.{key} is not distinct from i.{key}" for key in ("start_time", *keys))
    other_grouping = "t.start_time = i.start_time and t.group_by <> i.group_by"
    con.register("_recon_incoming", incoming.to_arrow())
    try:
        before = con.execute(f"select count(*) from {table}").fetchall()[0][0]
        con.execute(f"delete from {table} t using _recon_incoming i where ({same_key}) or ({other_grouping})")
        after = con.execute(f"select count(*) from {table}").fetchall()[0][0]
        con.execute(f"insert into {table} by name select * from _recon_incoming")
    finally:
        con.unregister("_recon_incoming")
    return before - after


def store_bill(con: duckdb.DuckDBPyConnection, rows: BillRows, origin: str) -> ImportResult:
    """Write the rows of one file (or one live fetch) in one transaction."""
    costs, images = rows.costs_frame(), rows.images_frame()
    con.execute("begin")
    try:
        replaced = _upsert(con, "openai_costs", costs, COST_KEYS, origin)
        replaced += _upsert(con, "openai_image_usage", images, IMAGE_KEYS, origin)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    if replaced:
        log.info("%s: replaced %d rows imported before for the same buckets", origin, replaced)
    return ImportResult(costs_rows=costs.height, image_rows=images.height, replaced_rows=replaced)
