"""kill -9 of `imagecost ingest` at random points while apps keep writing: every call ends up in the ledger once.

Two writer processes export spans through SpoolSpanExporter at a steady rate (files rotate every 16 KiB or
1 s, so sealing, `.part` reading and moves to done/ all happen under the kills) and log each span id after
its fsync. `imagecost ingest` is started 25 times and SIGKILLed after a random delay; then the writers stop
and one clean ingest runs. The longer variant (300 kills, the real executable) is tests/soak/kill_ingest.py.

DuckDB 2.0.1 itself can be left unable to open the ledger by a kill (rarely: see docs/reliability.md). The
test then does what the docs tell an operator to do — rebuild the ledger from the spool's done/ files —,
warns, and still requires every call exactly once at the end.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from pathlib import Path

from collector.spool import DONE_DIR
from ledger.ingest import ingest_paths
from tests.fixtures.reliability import (
    ForkRunner,
    KillRun,
    emitted_ids,
    kill_loop,
    ledger_rows,
    rebuild_ledger,
    start_writers,
    stop_writers,
    wait_for_ids,
)

KILLS = 25
EXTRA = 10
MAX_DELAY_S = 1.5  # first bound of the random delay; kill_loop then follows the measured ingest time
# Small files (a span is ~3.6 KiB) and batches: a run moves many files and commits several batches, as a
# large backlog would, so kills land between commits and between a commit and the moves to done/.
FILE_BYTES = 16 * 1024
BATCH_BYTES = 32 * 1024


def test_sigkilled_ingest_loses_and_doubles_nothing(tmp_path: Path, ledger_file: Path) -> None:
    """Starts from a migrated ledger (kills during a first migration: the soak script, which starts empty)."""
    spool, side, ledger = tmp_path / "spool", tmp_path / "ids", ledger_file
    argv = ["ingest", "--spool", str(spool), "--ledger", str(ledger)]
    runner = ForkRunner(argv, batch_bytes=BATCH_BYTES)
    writers = start_writers(spool, side, count=2, period_s=0.2, max_bytes=FILE_BYTES)
    rng = random.Random(20261124)
    runs: list[KillRun] = []
    try:
        wait_for_ids(side, at_least=20)
        # KILLS kills, plus up to EXTRA until one has landed after a commit (the moment that matters most).
        while len(runs) < KILLS or (not any(r.killed and r.committed for r in runs) and len(runs) < KILLS + EXTRA):
            runs += kill_loop(
                runner,
                kills=max(1, KILLS - len(runs)),
                rng=rng,
                max_delay_s=next((r.seconds for r in reversed(runs) if not r.killed), MAX_DELAY_S),
                ledger=ledger,
                out_dir=tmp_path,
            )
            if runs[-1].ledger_error is not None:
                broken = rebuild_ledger(ledger, spool)
                message = f"kill {len(runs)} left a ledger DuckDB cannot open ({broken}): {runs[-1].ledger_error}"
                warnings.warn(message, stacklevel=1)
    finally:
        exit_codes = stop_writers(writers, side)
        if exit_codes != [0, 0]:
            runner.close()
    assert exit_codes == [0, 0]
    final = runner.start(tmp_path / "final.txt").wait()
    runner.close()
    assert final == 0, (tmp_path / "final.txt").read_text()

    # No run that ended by itself crashed: it finished (0) or was killed (-9), nothing else.
    assert {r.exit_code for r in runs} <= {0, -9}, [r.output for r in runs if r.exit_code not in (0, -9)]
    assert not [r.output for r in runs if "Traceback" in r.output]
    killed = [r for r in runs if r.killed]
    assert len(killed) >= KILLS // 3  # the others finished before their kill (the bound is adaptive)
    assert any(r.committed for r in killed)  # some died after committing a batch, i.e. mid-run

    emitted = emitted_ids(side)
    assert len(emitted) == len(set(emitted)) > 100
    calls = [r["call_id"] for r in ledger_rows(ledger, "select call_id from calls")]
    assert Counter(calls).most_common(1)[0][1] == 1  # nothing doubled
    assert set(calls) == set(emitted)  # nothing lost, nothing invented
    # Each span carries one attempt and one image event: their rows are exactly once per call too.
    per_call = ledger_rows(
        ledger,
        "select (select count(*) from attempts) as attempts, (select count(distinct call_id) from attempts) as a, "
        "(select count(*) from images) as images, (select count(distinct call_id) from images) as i",
    )
    n = len(emitted)
    assert per_call == [{"attempts": n, "a": n, "images": n, "i": n}]
    # done/ alone rebuilds the same ledger: the recovery path for a ledger file that is lost or corrupt.
    rebuilt = tmp_path / "rebuilt.duckdb"
    ingest_paths(rebuilt, sorted((spool / DONE_DIR).glob("*.jsonl")))
    assert sorted(r["call_id"] for r in ledger_rows(rebuilt, "select call_id from calls")) == sorted(calls)
    # The spool is drained: every file sealed and moved to done/, nothing rejected.
    assert sorted(p.name for p in spool.iterdir() if not p.name.startswith(".")) == [DONE_DIR]
    assert ledger_rows(ledger, "select count(*) as n from rejected_lines") == [{"n": 0}]
    # A run killed after moving files to done/ but before forgetting their offsets leaves those rows behind;
    # the next run forgets the offsets of files no longer in the spool, so after the clean run none is left.
    assert ledger_rows(ledger, "select path from ingest_offsets") == []
