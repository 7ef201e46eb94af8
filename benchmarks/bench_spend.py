"""Month-to-date spend by route owner over a 10M-call ledger, through the priced_calls view.

    .venv/bin/python benchmarks/bench_spend.py [--rows 10000000] [--repeat 5] [--fresh]

The ledger (benchmarks/out/spend_<rows>.duckdb, git-ignored, kept between runs; --fresh rebuilds it)
holds --rows synthetic calls (the mix of bench_insert.py) spread evenly over the 90 UTC days ending
2026-11-24, so month-to-date (2026-11-01..24) is 24/90 of them. Views and price books are refreshed
on every run. Each query opens the file read-only, runs, fetches and closes (what the report and the
dashboard do); one warm-up, then best and median wall time of --repeat, and the best CPU time of the
process (all DuckDB threads; not inflated by other processes). Target: month-to-date < 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_insert import synthetic_calls_sql  # noqa: E402
from ledger.db import connect, migrate  # noqa: E402
from ledger.pricebook import load_books, sync_to_ledger  # noqa: E402
from ledger.report import Period, spend_report  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
T = TypeVar("T")
FIRST_DAY, TODAY, MONTH_START = date(2026, 8, 27), date(2026, 11, 24), date(2026, 11, 1)


def build(path: Path, rows: int, fresh: bool) -> None:
    if fresh:
        path.unlink(missing_ok=True)
    con = connect(path)
    try:
        migrate(con)  # also recreates the views from the current sql/views
        sync_to_ledger(con, load_books(None))
        if con.execute("select count(*) from calls").fetchall()[0][0] != rows:
            con.execute("delete from calls")
            started = time.perf_counter()
            con.execute(f"insert into calls by name {synthetic_calls_sql(rows, start=str(FIRST_DAY), days=90)}")
            print(f"generated {rows:,} calls in {time.perf_counter() - started:.1f} s")
        con.execute("checkpoint")
    finally:
        con.close()


def timed(
    path: Path, query: Callable[[duckdb.DuckDBPyConnection], T], repeat: int
) -> tuple[list[float], list[float], T]:
    """Wall and CPU seconds (all threads of this process) of ``repeat`` runs after one warm-up, and the result."""
    walls: list[float] = []
    cpus: list[float] = []
    for i in range(repeat + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        con = connect(path, read_only=True)
        try:
            result = query(con)
        finally:
            con.close()
        if i:  # the first run warms the OS page cache
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return walls, cpus, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="rebuild the synthetic ledger")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"spend_{args.rows}.duckdb"
    build(path, args.rows, args.fresh)

    mtd = Period(MONTH_START, TODAY)
    by_day = f"call_day between date '{MONTH_START}' and date '{TODAY}'"

    def report_mtd(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
        return spend_report(con, by="route_owner", period=mtd)

    queries: list[tuple[str, Callable[[duckdb.DuckDBPyConnection], object]]] = [
        ("month-to-date by route owner (imagecost report)", report_mtd),
        (
            "month-to-date by route owner, filter on call_day",
            lambda con: con.sql(
                f"select route_owner, count(*), sum(billed_cost_usd) from priced_calls where {by_day} group by 1"
            ).fetchall(),
        ),
        (
            "month-to-date by route owner via spend_daily",
            lambda con: con.sql(
                "select route_owner, sum(calls), sum(billed_cost_usd) from spend_daily "
                f"where day between date '{MONTH_START}' and date '{TODAY}' group by 1"
            ).fetchall(),
        ),
        (
            "whole ledger by route owner (no date filter)",
            lambda con: con.sql(
                "select route_owner, count(*), sum(billed_cost_usd) from priced_calls group by 1"
            ).fetchall(),
        ),
    ]
    _walls, _cpus, counted = timed(path, report_mtd, 0)
    mtd_calls = int(counted["calls"].sum())
    print(f"{args.rows:,} calls in the ledger, {mtd_calls:,} of them month-to-date; best and median of {args.repeat}")
    print(f"{'query':<52}{'wall best':>10}{'wall median':>12}{'CPU best':>10}")
    for name, query in queries:
        walls, cpus, _result = timed(path, query, args.repeat)
        print(f"{name:<52}{min(walls):>10.3f}{statistics.median(walls):>12.3f}{min(cpus):>10.3f}")
    print()
    print(counted)


if __name__ == "__main__":
    main()
