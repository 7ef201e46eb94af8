"""The ledger locked by another process: ingest and the dashboard wait and retry; the app never notices.

Another process (`HOLDER`) opens the ledger file with DuckDB and keeps it open — read-write, as a stray
`duckdb` shell or a second ingest would, or read-only, as another reader would (DuckDB then refuses a
writer too). While it holds the file: an instrumented call succeeds (apps never open the ledger), an
ingest and a dashboard query keep retrying (counted at `duckdb.connect`), and both finish as soon as the
holder lets go. Held longer than they wait, both give up with a one-line error and lose nothing.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

import collector
from collector.telemetry import flush
from dashboard import data
from ledger import db
from ledger.cli import cli
from ledger.db import LedgerBusy
from ledger.ingest import ingest_paths
from simulator import Simulator
from tests.fixtures.ingest import ListExporter, make_image_span, tracer_for
from tests.fixtures.reliability import ledger_rows
from tests.fixtures.simulator import openai_client

HOLDER = textwrap.dedent(
    """
    import sys, duckdb
    con = None
    for line in sys.stdin:
        command = line.split()
        if command[0] == "lock":
            con = duckdb.connect(sys.argv[1], read_only=command[1] == "ro")
            con.execute("select count(*) from calls").fetchall()
        elif command[0] == "release":
            con.close()
        print("done", flush=True)
    """
)


class Holder:
    """A process that opens the ledger on "lock rw" / "lock ro" and closes it on "release"."""

    def __init__(self, ledger: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(ledger)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "done"


@pytest.fixture
def holder(ledger_file: Path) -> Iterator[Holder]:
    held = Holder(ledger_file)
    yield held
    held.proc.kill()
    held.proc.wait()


@pytest.fixture
def lock_errors(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts, per thread name, the `duckdb.connect` calls that ledger.db saw fail on the lock."""
    counts: dict[str, int] = {}
    real = duckdb.connect

    def counting(*args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        try:
            return real(*args, **kwargs)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                name = threading.current_thread().name
                counts[name] = counts.get(name, 0) + 1
            raise

    monkeypatch.setattr(db.duckdb, "connect", counting)
    return counts


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for: {what}"
        time.sleep(0.01)


def spool_with_spans(spool: Path, count: int) -> list[str]:
    from collector.spool import SpoolSpanExporter

    exporter = SpoolSpanExporter(spool)
    captured = ListExporter()
    tracer = tracer_for(captured)
    for _ in range(count):
        make_image_span(tracer)
    exporter.export(captured.spans)
    exporter.shutdown()
    return [f"{s.context.span_id:016x}" for s in captured.spans]


class Background(threading.Thread):
    """Run ``target`` in a named thread and keep its result or exception."""

    def __init__(self, name: str, target: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._target_fn()
        except BaseException as exc:
            self.error = exc


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_ingest_waits_for_a_locked_ledger_then_ingests_everything(
    mode: str, holder: Holder, ledger_file: Path, tmp_path: Path, lock_errors: dict[str, int]
) -> None:
    ids = spool_with_spans(tmp_path / "spool", 5)
    holder.send(f"lock {mode}")
    ingest = Background("ingest", lambda: ingest_paths(ledger_file, [tmp_path / "spool"]))
    ingest.start()
    wait_until(lambda: lock_errors.get("ingest", 0) >= 3, "ingest to retry three times on the lock")
    assert ingest.is_alive()  # still waiting, not failed
    holder.send("release")
    ingest.join(timeout=60)
    assert ingest.error is None
    assert (ingest.result.calls_added, ingest.result.duplicates) == (5, 0)
    assert sorted(r["call_id"] for r in ledger_rows(ledger_file, "select call_id from calls")) == sorted(ids)


def test_dashboard_query_waits_for_a_locked_ledger(
    holder: Holder, ledger_file: Path, tmp_path: Path, lock_errors: dict[str, int]
) -> None:
    spool_with_spans(tmp_path / "spool", 3)
    ingest_paths(ledger_file, [tmp_path / "spool"])
    holder.send("lock rw")
    sql = "select count(*)::bigint as calls from priced_calls -- lock test"
    query = Background("dashboard", lambda: data.fetch(str(ledger_file), sql))
    query.start()
    wait_until(lambda: lock_errors.get("dashboard", 0) >= 3, "the dashboard query to retry three times")
    assert query.is_alive()
    holder.send("release")
    query.join(timeout=60)
    assert query.error is None
    assert query.result.to_dicts() == [{"calls": 3}]


def test_held_too_long_ingest_and_dashboard_give_up_with_one_line_and_lose_nothing(
    holder: Holder, ledger_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = spool_with_spans(tmp_path / "spool", 4)
    for opener in (db.connect, db.open_ledger.__wrapped__):  # wait 0.3 s instead of 10 s
        monkeypatch.setitem(opener.__kwdefaults__, "wait_s", 0.3)
    monkeypatch.setattr(data, "WAIT_S", 0.3)
    holder.send("lock rw")
    result = CliRunner().invoke(cli, ["ingest", "--spool", str(tmp_path / "spool"), "--ledger", str(ledger_file)])
    assert result.exit_code == 1
    assert result.output == f"Error: ledger {ledger_file} is locked by another process (waited 0s)\n"
    with pytest.raises(LedgerBusy, match="is locked by another process"):
        data.fetch(str(ledger_file), "select 1 as one -- held too long")
    holder.send("release")
    again = ingest_paths(ledger_file, [tmp_path / "spool"])
    assert (again.calls_added, again.duplicates) == (4, 0)
    assert sorted(r["call_id"] for r in ledger_rows(ledger_file, "select call_id from calls")) == sorted(ids)


def test_the_app_is_unaffected_while_the_ledger_is_locked(
    holder: Holder, ledger_file: Path, sim: Simulator, tmp_path: Path, clean_env: None
) -> None:
    spool = tmp_path / "app-spool"
    holder.send("lock rw")
    with pytest.raises(duckdb.IOException, match="lock"):  # the lock is real: nobody else can open the file
        duckdb.connect(str(ledger_file), read_only=True)
    collector.instrument(spool=spool, routes={sim.host_port: "openai"})
    try:
        with collector.tags(case="locked"):
            response = openai_client(sim).images.generate(
                model="gpt-image-2", prompt="a lighthouse", size="1024x1024", quality="medium"
            )
        flush()
    finally:
        collector.uninstrument()
    assert len(response.data) == 1
    assert response.usage.output_tokens == 1756  # gpt-image-2 1024x1024 medium (reference §5.5)
    assert len(list(spool.glob("*.jsonl*"))) >= 1  # the span waits in the spool
    holder.send("release")
    ingest_paths(ledger_file, [spool])
    rows = ledger_rows(ledger_file, "select status, image_output_tokens, request_id, tags->>'case' as case_ from calls")
    assert rows == [
        {"status": "ok", "image_output_tokens": 1756, "request_id": response._request_id, "case_": "locked"}
    ]
