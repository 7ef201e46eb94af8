"""First render time of every dashboard page on a large ledger (Streamlit AppTest, cold query cache).

    .venv/bin/python benchmarks/make_synthetic_ledger.py --calls 10000000 --out benchmarks/out/dash-10m.duckdb
    .venv/bin/python benchmarks/bench_dashboard.py --ledger benchmarks/out/dash-10m.duckdb [--repeat 3] [--queries]
        [--live]

The ledger's stores (ledger/stores.py) are refreshed first if they are behind, as ``imagecost ingest``
leaves them. ``--live`` also renders every page with the stores ignored (every figure computed from the
facts and price books, as before stores existed), in the same run, and prints the ratio.

One AppTest session renders the app once (imports, not timed); then, per page, the query cache is
cleared (``st.cache_data.clear()``) and the page's first render is timed — every query the page
needs runs against the ledger file, as for the first visitor after a 5 s cache expiry. The OS file
cache is warm (the file was just read). Prints the median of --repeat runs per page against the
3 s target (and the process CPU seconds, which other load on the machine does not stretch), the
ledger's size and row counts; --queries adds the slowest queries of each page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

import dashboard  # noqa: E402
from dashboard import data  # noqa: E402
from ledger import sqlfiles, stores  # noqa: E402
from ledger.db import LEDGER_ENV, connect, open_ledger  # noqa: E402

APP = Path(dashboard.__file__).parent / "app.py"
PAGES = (
    ("Spend", "spend.py"),
    ("Retry causes", "retry_causes.py"),
    ("Anomalies", "anomalies.py"),
    ("Calls", "calls.py"),
    ("Estimate", "estimate.py"),
    ("Price book", "price_book.py"),
)
TARGET_S = 3.0

query_log: dict[str, list[tuple[float, str]]] = defaultdict(list)
current_page = ""


def timed_read_sql(original: Any) -> Any:
    def read_sql(con: Any, sql: str, params: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return original(con, sql, params)
        finally:
            first = " ".join(sql.split())[:90]
            query_log[current_page].append((time.perf_counter() - started, first))

    return read_sql


def render_times(ledger: Path, repeat: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall seconds, process CPU seconds) per page and run."""
    global current_page
    os.environ[LEDGER_ENV] = str(ledger.resolve())
    times: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    at = AppTest.from_file(str(APP), default_timeout=600)
    at.run()  # imports and the first page; not timed
    for _ in range(repeat):
        for title, file in PAGES:
            current_page = title
            query_log[title].clear()
            st.cache_data.clear()
            at.switch_page(f"pages/{file}")
            started, started_cpu = time.perf_counter(), time.process_time()
            at.run()
            times[title].append(time.perf_counter() - started)
            cpu[title].append(time.process_time() - started_cpu)
            if at.exception or not at.title or at.title[0].value != title:
                raise SystemExit(f"{title}: did not render ({[e.value for e in at.exception]})")
    return times, cpu


def ledger_facts(ledger: Path) -> str:
    con = connect(ledger, read_only=True)
    try:
        counts = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in ("calls", "attempts", "images")}
    finally:
        con.close()
    size = ledger.stat().st_size
    return f"ledger {ledger} — {size / 1e9:.2f} GB; " + ", ".join(f"{t} {n:,}" for t, n in counts.items())


def ensure_stores(ledger: Path) -> None:
    con = connect(ledger, read_only=True)
    try:
        behind = set(sqlfiles.stores()) - set(stores.fresh(con))
    finally:
        con.close()
    if behind:
        started = time.perf_counter()
        with open_ledger(ledger) as con:
            summary = stores.refresh(con).summary()
        print(f"{summary} in {time.perf_counter() - started:.1f} s")
    else:
        print("stores: all up to date")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries", action="store_true", help="also list each page's slowest queries")
    parser.add_argument("--live", action="store_true", help="also render with the stores ignored, for the ratio")
    args = parser.parse_args()
    ensure_stores(args.ledger)
    print(ledger_facts(args.ledger))
    data.read_sql = timed_read_sql(data.read_sql)  # type: ignore[attr-defined]
    load_before = os.getloadavg()[0]
    live: dict[str, list[float]] = {}
    if args.live:  # first, so that --queries lists the queries of the runs with stores
        use_fresh = stores.use_fresh
        stores.use_fresh = lambda con: []  # type: ignore[assignment]  # every connection reads live
        live, _ = render_times(args.ledger, args.repeat)
        stores.use_fresh = use_fresh  # type: ignore[assignment]
    times, cpu = render_times(args.ledger, args.repeat)
    print(f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores")
    head = f"{'live':>8} {'ratio':>6}" if live else ""
    print(f"\n{'page':<14} {'first render':>13} {'min':>7} {'max':>7} {'CPU':>7}  {'target ≤ 3 s':<13} {head}")
    for title, _ in PAGES:
        runs = times[title]
        verdict = "ok" if statistics.median(runs) <= TARGET_S else "MISSED"
        compare = ""
        if live:
            slow = statistics.median(live[title])
            compare = f"{slow:>7.2f}s {slow / statistics.median(runs):>5.1f}x"
        print(
            f"{title:<14} {statistics.median(runs):>11.2f} s {min(runs):>6.2f}s {max(runs):>6.2f}s "
            f"{statistics.median(cpu[title]):>6.2f}s  {verdict:<13} {compare}"
        )
    if args.queries:
        for title, _ in PAGES:
            print(f"\n{title}: slowest queries of the last run")
            for seconds, sql in sorted(query_log[title], reverse=True)[:5]:
                print(f"  {seconds:6.2f} s  {sql}")


if __name__ == "__main__":
    main()
