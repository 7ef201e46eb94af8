"""Soak: `imagecost ingest` SIGKILLed many times while apps keep writing; every call ends up in the ledger once.

    .venv/bin/python tests/soak/kill_ingest.py --kills 300                   # the real executable each time
    .venv/bin/python tests/soak/kill_ingest.py --kills 1000 --runner fork    # forked from a warm process

The long variant of tests/test_reliability_kill.py (same writers, same kill loop). Prints one line per
outcome class and the final check; exits 1 if anything was lost or doubled.

A ledger DuckDB cannot open after a kill is counted as "ledger corrupted" and recovered the documented way
(tests.fixtures.reliability.rebuild_ledger, i.e. `imagecost rebuild`: set it aside, ingest <spool>/done/*.jsonl
and the spool into a new one); the loop goes on with the new ledger.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from collector.spool import DONE_DIR  # noqa: E402
from tests.fixtures.reliability import (  # noqa: E402
    ExecRunner,
    ForkRunner,
    KillRun,
    Runner,
    count_calls,
    emitted_ids,
    kill_loop,
    ledger_rows,
    rebuild_ledger,
    start_writers,
    stop_writers,
    wait_for_ids,
)


def runner_for(kind: str, argv: list[str], batch_bytes: int | None) -> Runner:
    if kind == "fork":
        return ForkRunner(argv, batch_bytes=batch_bytes)
    return ExecRunner([str(ROOT / ".venv" / "bin" / "imagecost"), *argv])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=300)
    parser.add_argument("--runner", choices=["exec", "fork"], default="exec")
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--period", type=float, default=0.2, help="seconds between a writer's exports")
    parser.add_argument("--file-kib", type=int, default=16, help="spool files rotate at this size")
    parser.add_argument("--batch-kib", type=int, default=0, help="fork runner only: ingest batch size (0: default)")
    parser.add_argument("--max-delay", type=float, default=2.0, help="first bound of the random kill delay (s)")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a new temp dir)")
    args = parser.parse_args()

    work = args.dir or Path(tempfile.mkdtemp(prefix="soak-kill-"))
    spool, side, ledger = work / "spool", work / "ids", work / "ledger.duckdb"
    argv = ["ingest", "--spool", str(spool), "--ledger", str(ledger)]
    runner = runner_for(args.runner, argv, args.batch_kib * 1024 or None)
    rng = random.Random(args.seed)
    started = time.monotonic()
    writers = start_writers(spool, side, args.writers, period_s=args.period, max_bytes=args.file_kib * 1024)
    runs: list[KillRun] = []
    corruptions: list[tuple[int, str]] = []
    try:
        wait_for_ids(side, at_least=20)
        while len(runs) < args.kills:
            step = min(10, args.kills - len(runs))
            batch = kill_loop(
                runner, kills=step, rng=rng, max_delay_s=args.max_delay, ledger=ledger, out_dir=work / "runs"
            )
            runs += batch
            if batch[-1].ledger_error is not None:
                corruptions.append((len(runs), batch[-1].ledger_error))
                rebuild_ledger(ledger, spool)
            print(f"{len(runs)} kills, {count_calls(ledger)} calls in the ledger", flush=True)
    finally:
        exit_codes = stop_writers(writers, side)
    final = runner.start(work / "final.txt").wait()
    runner.close()
    emitted = emitted_ids(side)
    calls = [r["call_id"] for r in ledger_rows(ledger, "select call_id from calls")]
    outcomes = Counter(
        "killed after committing" if r.killed and r.committed else "killed before any commit" if r.killed
        else f"finished (exit {r.exit_code})"
        for r in runs
    )  # fmt: skip
    tracebacks = sum("Traceback" in r.output for r in runs)
    lost, extra, doubled = len(set(emitted) - set(calls)), len(set(calls) - set(emitted)), len(calls) - len(set(calls))
    leftovers = [p.name for p in spool.iterdir() if not p.name.startswith(".") and p.name != DONE_DIR]

    print(f"\nwork dir {work}; runner {args.runner}; {time.monotonic() - started:.0f} s")
    print(
        f"writers {args.writers} (exit codes {exit_codes}); spans emitted {len(emitted)} ({len(set(emitted))} distinct)"
    )
    for outcome, count in sorted(outcomes.items()):
        print(f"  {outcome:<28} {count:>5}")
    print(f"  runs with a traceback        {tracebacks:>5}")
    print(
        f"  ledger corrupted by a kill   {len(corruptions):>5}"
        + "".join(f"\n    after kill {k}: {e}" for k, e in corruptions)
    )
    print(f"final ingest exit {final}; ledger calls {len(calls)}; lost {lost}; not emitted {extra}; doubled {doubled}")
    print(f"left in the spool (not in done/): {leftovers or 'nothing'}")
    ok = final == 0 and exit_codes == [0] * args.writers and not (lost or extra or doubled or tracebacks or leftovers)
    print("RESULT:", "every call exactly once" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
