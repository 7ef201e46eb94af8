"""What a writer pays to open the ledger, and what an ingest run that finds nothing new costs, on a large ledger.

    .venv/bin/python benchmarks/bench_open.py --ledger benchmarks/out/dash-10m.duckdb [--repeat 5]

On a copy of the ledger, interleaved, fastest of --repeat:
1. ``open_ledger`` (connect + migrate) when the views carry the current fingerprint (skipped) and when they
   must be recreated (their comments cleared first, as after an upgrade);
2. ``ingest_paths`` on an empty spool (what a scheduled ``imagecost ingest`` does when nothing was written),
   views current;
3. ``imagecost ingest`` as a process on the same empty spool (imports included).
The copy is deleted at the end.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.db import connect, open_ledger  # noqa: E402
from ledger.ingest import ingest_paths  # noqa: E402


def fastest(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def clear_view_comments(ledger: Path) -> None:
    con = connect(ledger)
    try:
        views = con.execute("select view_name from duckdb_views() where not internal").fetchall()
        for (name,) in views:
            con.execute(f"comment on view {name} is null")
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.ledger.parent) as scratch:
        copy, spool = Path(scratch) / "ledger.duckdb", Path(scratch) / "spool"
        shutil.copyfile(args.ledger, copy)
        spool.mkdir()

        def open_close() -> None:
            with open_ledger(copy):
                pass

        def open_after_upgrade() -> None:
            clear_view_comments(copy)
            started = time.perf_counter()
            open_close()
            timings.append(time.perf_counter() - started)

        open_close()  # tag the views once
        timings: list[float] = []
        rows = [("open_ledger, views current (skipped)", fastest(open_close, args.repeat))]
        for _ in range(args.repeat):
            open_after_upgrade()
        rows.append(("open_ledger, views recreated (after an upgrade)", min(timings)))
        rows.append(("ingest_paths, empty spool", fastest(lambda: ingest_paths(copy, [spool]), args.repeat)))
        command = [
            str(Path(sys.executable).parent / "imagecost"),
            "ingest",
            "--spool",
            str(spool),
            "--ledger",
            str(copy),
        ]
        rows.append(
            (
                "imagecost ingest process, empty spool",
                fastest(lambda: subprocess.run(command, check=True, capture_output=True), args.repeat),
            )
        )
    print(f"ledger: {args.ledger} ({args.ledger.stat().st_size / 1e9:.2f} GB), fastest of {args.repeat}")
    print(f"{'step':<50} {'s':>8}")
    for title, seconds in rows:
        print(f"{title:<50} {seconds:8.3f}")


if __name__ == "__main__":
    main()
