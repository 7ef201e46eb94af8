"""Closed periods over a 10M-call ledger: what `imagecost close` costs and what booked_calls adds to a report.

    .venv/bin/python benchmarks/bench_closing.py [--rows 10000000] [--repeat 3] [--fresh]

The ledger (benchmarks/out/closing_<rows>.duckdb, git-ignored, kept between runs; --fresh rebuilds it)
holds --rows synthetic calls (the mix of bench_insert.py) spread evenly over the 90 UTC days ending
2026-11-24. Each run starts from no closed month and the packaged price books, then:

1. month-to-date by route owner, the old way (priced_calls) and through booked_calls (`imagecost report`);
2. closes 2026-08, 2026-09 and 2026-10 (timed, as `imagecost close` does it);
3. the same report with three closed months whose inputs did not change (nothing to re-price);
4. after one late call for 2026-10 (only the calls nothing is booked for are priced);
5. after a price change from 2026-08-15 (every closed month is re-priced and compared).

Each query opens the file read-only, runs, fetches and closes; one warm-up, then best and median wall time
of --repeat, and the best CPU time of the process (all DuckDB threads).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_insert import synthetic_calls_sql  # noqa: E402
from ledger.closing import close_month  # noqa: E402
from ledger.db import connect, migrate  # noqa: E402
from ledger.facts import insert_calls  # noqa: E402
from ledger.pricebook import load_books, sync_to_ledger  # noqa: E402
from ledger.report import Period, spend_report  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
FIRST_DAY, TODAY, MONTH_START = date(2026, 8, 27), date(2026, 11, 24), date(2026, 11, 1)
CLOSED = (date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1))
LATE_ID = "1a7e000000000001"
PRICE_CHANGE = """
[[rate]]
models = ["gpt-image-2"]
tier = "standard"
effective_from = 2026-08-15
source_url = "https://example.test/bench"
checked_on = 2026-11-24
usd_per_1m = { text_input = 5.00, image_output = 40.00 }
"""
OLD_MTD = (
    "select route_owner, count(*), sum(billed_cost_usd) from priced_calls "
    "where started_at >= ? and call_day >= ? and started_at < ? and call_day <= ? group by 1"
)


def prepare(path: Path, rows: int, fresh: bool) -> None:
    """The synthetic ledger with no closed month, no late call and the packaged books."""
    if fresh:
        path.unlink(missing_ok=True)
    con = connect(path)
    try:
        migrate(con)
        if con.execute("select count(*) from calls where call_id <> ?", [LATE_ID]).fetchall()[0][0] != rows:
            con.execute("delete from calls")
            started = time.perf_counter()
            con.execute(f"insert into calls by name {synthetic_calls_sql(rows, start=str(FIRST_DAY), days=90)}")
            print(f"generated {rows:,} calls in {time.perf_counter() - started:.1f} s")
        for table in ("frozen_calls", "frozen_months", "period_events"):
            con.execute(f"delete from {table}")
        con.execute("delete from calls where call_id = ?", [LATE_ID])
        sync_to_ledger(con, load_books(None))
        con.execute("checkpoint")
    finally:
        con.close()


def timed(path: Path, query: Callable[[duckdb.DuckDBPyConnection], object], repeat: int) -> tuple[float, float, float]:
    """(best wall, median wall, best CPU) seconds of ``repeat`` read-only runs after one warm-up."""
    walls: list[float] = []
    cpus: list[float] = []
    for i in range(repeat + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        con = connect(path, read_only=True)
        try:
            query(con)
        finally:
            con.close()
        if i:
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return min(walls), statistics.median(walls), min(cpus)


def write(path: Path, action: Callable[[duckdb.DuckDBPyConnection], object]) -> float:
    """Wall seconds of one write (connection opened and closed around it, as the CLI does)."""
    started = time.perf_counter()
    con = connect(path)
    try:
        action(con)
    finally:
        con.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the synthetic ledger")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"closing_{args.rows}.duckdb"
    prepare(path, args.rows, args.fresh)

    mtd = Period(MONTH_START, TODAY)
    old_params = [
        datetime(2026, 11, 1, tzinfo=UTC),
        MONTH_START,
        datetime(2026, 11, 25, tzinfo=UTC),
        TODAY,
    ]
    results: list[tuple[str, tuple[float, float, float]]] = []
    totals: dict[str, float] = {}

    def report_mtd(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
        return spend_report(con, by="route_owner", period=mtd)

    def measure(name: str) -> None:
        results.append((name, timed(path, report_mtd, args.repeat)))
        con = connect(path, read_only=True)
        try:
            totals[name] = float(report_mtd(con)[["official_usd", "contract_usd"]].sum().sum_horizontal()[0])
        finally:
            con.close()

    results.append(
        (
            "MTD by route owner, priced_calls (before closing)",
            timed(path, lambda c: c.sql(OLD_MTD, params=old_params).fetchall(), args.repeat),
        )
    )
    measure("MTD by route owner, booked_calls, nothing closed")
    results.append(
        (
            "whole ledger by month, booked_calls, nothing closed",
            timed(path, lambda c: spend_report(c, by="month"), args.repeat),
        )
    )

    closes: list[tuple[str, int, float]] = []
    for month in CLOSED:
        frozen: list[int] = []

        def close(con: duckdb.DuckDBPyConnection, month: date = month, frozen: list[int] = frozen) -> None:
            frozen.append(close_month(con, month, today=TODAY, by_user="bench").row_count)

        seconds = write(path, close)
        closes.append((f"{month:%Y-%m}", frozen[0], seconds))

    measure("MTD, 3 closed months, unchanged (nothing re-priced)")
    results.append(
        (
            "whole ledger by month, 3 closed months, unchanged",
            timed(path, lambda c: spend_report(c, by="month"), args.repeat),
        )
    )
    late = pl.DataFrame(
        [
            {
                "call_id": LATE_ID,
                "trace_id": "0" * 32,
                "started_at": datetime(2026, 10, 12, tzinfo=UTC),
                "route": "images.generate",
                "route_owner": "openai",
                "requested_model": "gpt-image-2",
                "text_input_tokens": 81,
                "image_output_tokens": 1756,
                "images_returned": 1,
                "usage_source": "reported",
                "status": "ok",
            }
        ]
    )
    write(path, lambda con: insert_calls(con, late))
    measure("MTD, after a late call for 2026-10 (late calls priced)")
    with tempfile.TemporaryDirectory() as prices:
        (Path(prices) / "change.toml").write_text(PRICE_CHANGE)
        write(path, lambda con: sync_to_ledger(con, load_books(prices)))
    measure("MTD, after a price change from 2026-08-15 (all re-priced)")

    con = connect(path, read_only=True)
    try:
        calls = con.execute("select count(*) from calls").fetchall()[0][0]
    finally:
        con.close()
    print(f"{calls:,} calls; best and median of {args.repeat} runs after a warm-up")
    print(f"{'close':<10}{'rows frozen':>14}{'seconds':>10}")
    for month, rows, seconds in closes:
        print(f"{month:<10}{rows:>14,}{seconds:>10.1f}")
    print()
    print(f"{'query':<60}{'wall best':>10}{'wall median':>12}{'CPU best':>10}")
    for name, (best, median, cpu) in results:
        print(f"{name:<60}{best:>10.3f}{median:>12.3f}{cpu:>10.3f}")
    print()
    for name, total in totals.items():
        print(f"{name}: MTD billed {total:,.4f} USD")


if __name__ == "__main__":
    main()
