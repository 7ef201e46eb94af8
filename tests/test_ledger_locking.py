"""The locking policy of ledger/db.py, with two real processes on one DuckDB file.

A writer holds the file only for one short transaction per batch; a read-only reader that finds it
locked waits (connect(..., wait_s=...)) and opens it as soon as the writer lets go.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.db import LedgerBusy, connect

# The writer process: inserts `rows` calls per batch through ledger.facts. With HOLD it keeps the
# file (inside an open transaction) until told to go on; otherwise it closes the file after each batch
# and waits for "go" before the next one.
WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    import polars as pl
    from ledger.db import connect
    from ledger.facts import insert_calls

    path, batches, rows, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "hold"

    def batch(k):
        return pl.DataFrame({
            "call_id": [f"{k:08x}{i:08x}" for i in range(rows)],
            "trace_id": ["0" * 32] * rows,
            "started_at": [datetime(2026, 11, 3, tzinfo=UTC)] * rows,
            "route": ["images.generate"] * rows,
            "route_owner": ["openai"] * rows,
            "usage_source": ["reported"] * rows,
            "status": ["ok"] * rows,
        })

    for k in range(batches):
        con = connect(path)
        if hold:
            con.execute("begin")
            insert_calls(con, batch(k))
            print(f"holding {k}", flush=True)
            time.sleep(1.0)  # the reader tries to open the file meanwhile
            con.execute("commit")
        else:
            insert_calls(con, batch(k))
        con.close()
        print(f"released {k}", flush=True)
        if not hold and k + 1 < batches:
            assert sys.stdin.readline().strip() == "go"
    """
)


@pytest.fixture
def ledger(ledger_file: Path) -> Path:
    return ledger_file


def start_writer(path: Path, batches: int, rows: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(batches), str(rows), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def writers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def count_calls(path: Path, wait_s: float) -> int:
    con = connect(path, read_only=True, wait_s=wait_s)
    try:
        return con.execute("select count(*) from calls").fetchall()[0][0]
    finally:
        con.close()


def test_read_only_open_waits_for_the_writer_then_succeeds(ledger: Path, writers: list) -> None:
    writer = start_writer(ledger, batches=1, rows=5, mode="hold")
    writers.append(writer)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "holding 0"  # the writer has the file, transaction open
    # The rows are committed only just before the writer closes the file: seeing all 5 proves the
    # reader waited for the lock instead of failing or reading around it.
    assert count_calls(ledger, wait_s=30) == 5
    assert writer.stdout.readline().strip() == "released 0"
    assert writer.wait(timeout=30) == 0


def test_reader_gives_up_with_a_one_line_error_when_the_wait_is_too_short(ledger: Path, writers: list) -> None:
    writer = start_writer(ledger, batches=1, rows=5, mode="hold")
    writers.append(writer)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "holding 0"
    with pytest.raises(LedgerBusy) as info:
        connect(ledger, read_only=True, wait_s=0.1)
    assert str(info.value) == f"ledger {ledger} is locked by another process (waited 0s)"
    assert writer.wait(timeout=30) == 0


def test_reader_succeeds_between_writer_batches(ledger: Path, writers: list) -> None:
    writer = start_writer(ledger, batches=3, rows=100, mode="batches")
    writers.append(writer)
    assert writer.stdout is not None and writer.stdin is not None
    seen = []
    for k in range(3):
        assert writer.stdout.readline().strip() == f"released {k}"
        seen.append(count_calls(ledger, wait_s=30))  # the writer is between batches: the file is free
        if k < 2:
            writer.stdin.write("go\n")
            writer.stdin.flush()
    assert seen == [100, 200, 300]
    assert writer.wait(timeout=30) == 0
