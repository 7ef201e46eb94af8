"""Backups after close / reopen, and `imagecost rebuild` of a ledger DuckDB cannot open (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result

from collector.spool import SpoolSpanExporter
from ledger import backup
from ledger.cli import cli
from ledger.ingest.files import spool_lock
from tests.fixtures.ingest import FixedIds, make_image_span, tracer_for

AS_OF = "2026-12-05"  # the spans start on 2026-11-24 (tests.fixtures.ingest.START_NS): November is closable


def imagecost(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def write_calls(spool: Path, count: int, first: int) -> list[str]:
    """``count`` call spans as one sealed spool file; their call ids (span ids, lower-case hex)."""
    exporter = SpoolSpanExporter(spool)
    span_base = 0xB7AD6B7169200000 + first
    tracer = tracer_for(exporter, id_generator=FixedIds(0x0AF7651916CD43DD8448EB211C800000 + first, span_base))
    for _ in range(count):
        make_image_span(tracer)
    exporter.shutdown()
    return [f"{span_base + n:016x}" for n in range(1, count + 1)]


def rows(ledger: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def call_ids(ledger: Path) -> list[str]:
    return [r[0] for r in rows(ledger, "select call_id from calls order by call_id")]


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.duckdb"


def ingest(spool: Path, ledger: Path) -> None:
    result = imagecost("ingest", "--spool", str(spool), "--ledger", str(ledger))
    assert result.exit_code == 0, result.output


def test_close_and_reopen_leave_a_backup_that_holds_them_and_the_newest_three_are_kept(
    spool: Path, ledger: Path
) -> None:
    write_calls(spool, 3, first=0)
    ingest(spool, ledger)
    closed = imagecost("close", "2026-11", "--ledger", str(ledger), "--as-of", AS_OF)
    assert closed.exit_code == 0, closed.output
    [first] = backup.backups(ledger)
    assert first.parent == ledger.parent / "ledger.duckdb.backups" and first.name.endswith("-close-2026-11.duckdb")
    assert closed.stdout.splitlines()[-1] == f"  backup: {first}"
    # The backup is the committed ledger: the close, its frozen rows, the calls.
    assert rows(first, "select event, month::varchar from period_events") == [("closed", "2026-11-01")]
    assert rows(first, "select count(*) from frozen_calls") == [(3,)]
    assert rows(first, "select count(*) from calls") == [(3,)]

    for _ in range(2):
        assert imagecost("reopen", "2026-11", "--reason", "late invoice", "--ledger", str(ledger)).exit_code == 0
        assert imagecost("close", "2026-11", "--ledger", str(ledger), "--as-of", AS_OF).exit_code == 0
    kept = backup.backups(ledger)
    assert [p.name.split("-", 1)[1] for p in kept] == [
        "close-2026-11.duckdb",
        "reopen-2026-11.duckdb",
        "close-2026-11.duckdb",
    ]
    assert first not in kept  # 5 written, the newest 3 kept
    assert rows(kept[0], "select count(*) from period_events") == [(5,)]
    assert not list(backup.backups_dir(ledger).glob("*.tmp"))

    skipped = imagecost("reopen", "2026-11", "--reason", "again", "--ledger", str(ledger), "--no-backup")
    assert skipped.exit_code == 0 and "backup" not in skipped.stdout
    assert backup.backups(ledger) == kept


@pytest.mark.parametrize("damage", ["empty file", "garbage header"])
def test_rebuild_starts_from_the_newest_backup_and_recovers_every_call_once(
    spool: Path, ledger: Path, damage: str
) -> None:
    before = write_calls(spool, 4, first=0)
    ingest(spool, ledger)
    assert imagecost("close", "2026-11", "--ledger", str(ledger), "--as-of", AS_OF).exit_code == 0
    after = write_calls(spool, 3, first=100)  # ingested after the backup: only in done/ once ingested
    ingest(spool, ledger)
    pending = write_calls(spool, 2, first=200)  # still in the spool, never ingested
    with ledger.open("r+b") as handle:  # what a kill mid-checkpoint can leave (docs/reliability.md)
        if damage == "empty file":
            handle.truncate(0)
        else:
            handle.write(b"\xff" * 8192)
    assert backup.opens(ledger) is not None

    result = imagecost("rebuild", "--ledger", str(ledger), "--spool", str(spool))
    assert result.exit_code == 0, result.output
    [broken] = ledger.parent.glob("ledger.duckdb.broken-*")
    [newest] = backup.backups(ledger)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ledger did not open: ")
    assert lines[1:3] == [
        f"{broken}: set aside",
        f"started from backup {newest} (closed months as of that backup are kept)",
    ]
    assert lines[3].startswith("from 2 done/ file(s) and the spool: ingested 5 new call(s)")
    assert lines[-1] == f"rebuilt {ledger}"
    assert call_ids(ledger) == sorted(before + after + pending)  # every call, each once
    assert rows(ledger, "select event from period_events") == [("closed",)]
    assert rows(ledger, "select count(*) from frozen_calls") == [(4,)]
    assert rows(ledger, "select count(*) from attempts") == [(9,)]
    # The rebuilt ledger is an ordinary one: the next ingest finds nothing new.
    again = imagecost("ingest", "--spool", str(spool), "--ledger", str(ledger))
    assert again.stdout.startswith("ingested 0 new call(s)")


def test_rebuild_without_a_backup_says_what_is_not_recovered(spool: Path, ledger: Path) -> None:
    ids = write_calls(spool, 3, first=0)
    ingest(spool, ledger)
    ledger.write_bytes(b"")
    result = imagecost("rebuild", "--ledger", str(ledger), "--spool", str(spool))
    assert result.exit_code == 0, result.output
    assert (
        "started from an empty ledger: no usable backup, so closed months and reopen records are not recovered "
        "(close them again: `imagecost close YYYY-MM`); reconciliation imports can be imported again"
    ) in result.stdout.splitlines()
    assert call_ids(ledger) == sorted(ids)


def test_rebuild_skips_a_backup_that_does_not_open(spool: Path, ledger: Path) -> None:
    ids = write_calls(spool, 2, first=0)
    ingest(spool, ledger)
    assert imagecost("close", "2026-11", "--ledger", str(ledger), "--as-of", AS_OF).exit_code == 0
    [good] = backup.backups(ledger)
    bad = good.with_name("29991231T000000000000Z-close-2026-11.duckdb")  # sorts newest
    bad.write_bytes(b"not a database")
    ledger.write_bytes(b"")
    result = imagecost("rebuild", "--ledger", str(ledger), "--spool", str(spool))
    assert result.exit_code == 0, result.output
    assert f"backup {bad.name} skipped: " in result.stdout
    assert f"started from backup {good} " in result.stdout
    assert call_ids(ledger) == sorted(ids)
    assert rows(ledger, "select event from period_events") == [("closed",)]


def test_rebuild_refuses_a_ledger_that_opens_unless_forced(spool: Path, ledger: Path) -> None:
    ids = write_calls(spool, 2, first=0)
    ingest(spool, ledger)
    refused = imagecost("rebuild", "--ledger", str(ledger), "--spool", str(spool))
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"Error: ledger {ledger} opens fine: nothing to rebuild (pass --force to rebuild it anyway, e.g. after a "
        "spool file was ingested into the wrong ledger)\n"
    )
    assert not list(ledger.parent.glob("*.broken-*"))
    with spool_lock(spool, wait=False):  # an ingest is running: stop before touching anything
        busy = imagecost("rebuild", "--ledger", str(ledger), "--spool", str(spool), "--force")
    assert busy.exit_code == 1 and "another `imagecost ingest` is running on spool" in busy.stderr
    assert not list(ledger.parent.glob("*.broken-*"))
    forced = imagecost("rebuild", "--ledger", str(ledger), "--spool", str(spool), "--force")
    assert forced.exit_code == 0, forced.output
    assert len(list(ledger.parent.glob("ledger.duckdb.broken-*"))) == 1
    assert call_ids(ledger) == sorted(ids)

    missing = imagecost("rebuild", "--ledger", str(ledger), "--spool", str(spool / "nope"))
    assert missing.exit_code == 1
    assert (
        missing.stderr
        == f"Error: no spool directory at {spool / 'nope'}; pass --spool DIR (the directory apps export to)\n"
    )


def test_spool_prune_deletes_only_what_the_newest_backup_holds_and_a_rebuild_still_has_every_call(
    spool: Path, ledger: Path, tmp_path: Path
) -> None:
    first = write_calls(spool, 3, first=0)
    ingest(spool, ledger)
    made = imagecost("backup", "--ledger", str(ledger))
    assert made.exit_code == 0, made.output
    [taken] = backup.backups(ledger)
    assert made.stdout == f"backup: {taken} (3 calls)\n" and taken.name.endswith("-manual.duckdb")
    second = write_calls(spool, 2, first=100)
    ingest(spool, ledger)
    held, newer = sorted((spool / "done").iterdir())  # names start with the same host and pid: written in order
    sizes = held.stat().st_size

    dry = imagecost("spool", "prune", "--spool", str(spool), "--ledger", str(ledger), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines() == [
        f"would delete {held}",
        f"would delete 1 done/ file(s) ({sizes / 1e6:.1f} MB) whose calls are in every backup (the oldest: {taken}); "
        "kept 1 ingested after it",
    ]
    assert held.exists()
    pruned = imagecost("spool", "prune", "--spool", str(spool), "--ledger", str(ledger))
    assert pruned.stdout.splitlines() == [
        f"deleted 1 done/ file(s) ({sizes / 1e6:.1f} MB) whose calls are in every backup (the oldest: {taken}); "
        "kept 1 ingested after it"
    ]
    assert sorted((spool / "done").iterdir()) == [newer]

    # A newer backup holds the second file too, but the oldest does not: kept, so that a rebuild falling back
    # past a damaged newest backup still has it.
    assert imagecost("backup", "--ledger", str(ledger)).exit_code == 0
    again = imagecost("spool", "prune", "--spool", str(spool), "--ledger", str(ledger))
    assert again.stdout.startswith("deleted 0 done/ file(s) (0.0 MB)") and "kept 1 ingested after it" in again.stdout
    newest = backup.backups(ledger)[0]
    newest.write_bytes(b"damaged")
    ledger.write_bytes(b"")
    rebuilt = imagecost("rebuild", "--ledger", str(ledger), "--spool", str(spool))
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"backup {newest.name} skipped: " in rebuilt.stdout and f"started from backup {taken} " in rebuilt.stdout
    assert call_ids(ledger) == sorted(first + second)  # every call, once

    other = tmp_path / "other.duckdb"
    assert imagecost("init", "--ledger", str(other)).exit_code == 0
    refused = imagecost("spool", "prune", "--spool", str(spool), "--ledger", str(other))
    assert refused.exit_code == 1 and refused.stderr.startswith(f"Error: no backup of {other} opens")
    assert sorted((spool / "done").iterdir()) == [newer]
    nowhere = imagecost("spool", "prune", "--spool", str(tmp_path / "nope"), "--ledger", str(ledger))
    assert nowhere.exit_code == 1 and nowhere.stderr.startswith(f"Error: no spool directory at {tmp_path / 'nope'}")
    missing = imagecost("backup", "--ledger", str(tmp_path / "nope.duckdb"))
    assert missing.exit_code == 1 and "no ledger at" in missing.stderr


def test_a_backup_that_cannot_be_written_warns_and_the_close_stands(spool: Path, ledger: Path) -> None:
    write_calls(spool, 2, first=0)
    ingest(spool, ledger)
    backup.backups_dir(ledger).write_text("a file where the backups directory should be")
    closed = imagecost("close", "2026-11", "--ledger", str(ledger), "--as-of", AS_OF)
    assert closed.exit_code == 0, closed.output
    assert closed.stdout.splitlines()[0].startswith("closed 2026-11 (close #1)")
    assert closed.stdout.splitlines()[-1] == "  backup: none"
    assert closed.stderr.startswith("warning: the ledger was not backed up (") and closed.stderr.count("\n") == 1
    assert rows(ledger, "select event from period_events") == [("closed",)]
