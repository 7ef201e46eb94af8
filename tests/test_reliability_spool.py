"""The spool's disk full or not writable: the app's image calls still succeed, drops are counted and logged once.

Real SDK calls through the instrumented client against the simulator, the spool exporter the collector sets
up itself (``instrument(spool=...)``), and a spool directory that cannot take the spans:

- disk full: the spool on a 64 KiB tmpfs mounted for the test (we run as root in CI; where ``mount`` is not
  allowed, the exporter's ``os`` is swapped for one whose ``write`` raises ENOSPC past the same budget);
- not writable: a spool path whose parent is a regular file (ENOTDIR: root cannot write there either), and
  a read-only tmpfs (EROFS) where mounting is allowed.

Each call is flushed on its own, so each span is one spool line: the first ones fit, the rest are dropped.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import subprocess
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from PIL import Image

import collector
import collector.spool
from collector import semconv as sc
from collector.telemetry import flush
from ledger.ingest import ingest_paths
from simulator import Simulator
from tests.fixtures.reliability import ledger_rows
from tests.fixtures.simulator import openai_client

CALLS = 12
DISK_BYTES = 64 * 1024
FREE_BYTES = 12 * 1024  # left free after the filler: room for two or three spans (~3.6 KiB each)


@contextmanager
def tmpfs(mountpoint: Path, *, size: int, read_only: bool = False) -> Iterator[bool]:
    """Mount a tmpfs of ``size`` bytes at ``mountpoint``; yields False (nothing mounted) where not allowed."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint)]).returncode == 0
    except OSError:  # no mount binary
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def budget_os(budget: int) -> types.SimpleNamespace:
    """``os`` for collector.spool whose ``write`` fails with ENOSPC once ``budget`` bytes were written."""
    left = [budget]

    def write(fd: int, data: Any) -> int:
        if len(data) > left[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        left[0] -= len(data)
        return os.write(fd, data)

    names = {name: getattr(os, name) for name in dir(os) if not name.startswith("__")}
    return types.SimpleNamespace(**{**names, "write": write})


def fill(directory: Path, leave: int) -> None:
    """Write a filler file until only about ``leave`` bytes of the filesystem are free."""
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    (directory / "filler").write_bytes(b"\0" * max(0, free - leave))


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def make_calls(sim: Simulator, spool: Path, reader: InMemoryMetricReader) -> list[Any]:
    """CALLS instrumented calls (non-stream, stream, edit), each flushed to the spool on its own."""
    provider = TracerProvider()  # ours, so the spool file is sealed (shutdown) before the test unmounts it
    collector.instrument(
        spool=spool, routes={sim.host_port: "openai"}, tracer_provider=provider, meter_provider=MeterProvider([reader])
    )
    client = openai_client(sim)
    results: list[Any] = []
    try:
        for case in range(CALLS):
            args = {"model": "gpt-image-2", "prompt": f"lighthouse number {case:02d}", "size": "1024x1024"}
            with collector.tags(case=str(case)):
                if case % 3 == 0:
                    results.append(client.images.generate(**args, quality="low"))
                elif case % 3 == 1:
                    results.append(list(client.images.generate(**args, quality="low", stream=True, partial_images=1)))
                else:
                    results.append(client.images.edit(image=("in.png", png(), "image/png"), **args))
            flush()
    finally:
        collector.uninstrument()
        provider.shutdown()
    return results


def check_results(results: list[Any]) -> None:
    """Every call returned what the simulator served, exactly as without telemetry."""
    for case, result in enumerate(results):
        if case % 3 == 1:  # [partial, completed]
            assert [e.type for e in result] == ["image_generation.partial_image", "image_generation.completed"]
            assert result[-1].usage.output_tokens == 196 + 100  # low 1024x1024 + one partial image (§3.2)
        else:
            assert len(result.data) == 1 and result.data[0].b64_json
            assert result.usage.output_tokens == (196 if case % 3 == 0 else 1756)  # low / auto->medium (§5.5)


def dropped(reader: InMemoryMetricReader) -> dict[str, int]:
    """imagecost.telemetry.dropped by error.type."""
    data = reader.get_metrics_data()
    return {
        point.attributes[sc.ERROR_TYPE]: point.value
        for rm in (data.resource_metrics if data else [])
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == sc.METRIC_TELEMETRY_DROPPED
        for point in metric.data.data_points
    }


def spool_lines(spool: Path) -> list[bytes]:
    lines = [line for path in sorted(spool.glob("*.jsonl*")) for line in path.read_bytes().split(b"\n")]
    assert lines[-1] == b""  # every file ends with a whole line
    return [line for line in lines if line]


def test_spool_disk_full_app_calls_succeed_and_drops_are_counted(
    sim: Simulator, tmp_path: Path, clean_env: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="collector.spool")
    reader = InMemoryMetricReader()
    with tmpfs(tmp_path / "disk", size=DISK_BYTES) as mounted:
        if mounted:
            fill(tmp_path / "disk", FREE_BYTES)
        else:  # simulated: the same budget, ENOSPC from os.write (see docs/reliability.md)
            monkeypatch.setattr(collector.spool, "os", budget_os(FREE_BYTES))
        spool = tmp_path / "disk" / "spool"
        results = make_calls(sim, spool, reader)
        check_results(results)
        kept = len(spool_lines(spool))
        assert 1 <= kept < CALLS  # some spans fit, the rest did not
        assert dropped(reader) == {"ENOSPC": CALLS - kept}  # one span per flush, each dropped one counted
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1 and "cannot write spans (OSError: [Errno 28]" in warnings[0]
        result = ingest_paths(tmp_path / "ledger.duckdb", [spool])
    assert (result.calls_added, result.lines_rejected) == (kept, 0)  # whole lines only, all readable
    rows = ledger_rows(tmp_path / "ledger.duckdb", "select tags->>'case' as c from calls order by started_at")
    assert [r["c"] for r in rows] == [str(case) for case in range(kept)]  # the first ones, in order


@pytest.mark.parametrize("how", ["parent_is_a_file", "read_only_mount"])
def test_unwritable_spool_app_calls_succeed_and_drops_are_counted(
    how: str,
    sim: Simulator,
    tmp_path: Path,
    clean_env: None,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IMAGECOST_PROMPT_SALT")  # the salt file cannot be created either: no prompt hash then
    caplog.set_level(logging.WARNING)
    reader = InMemoryMetricReader()
    if how == "parent_is_a_file":
        (tmp_path / "a-file").write_text("a file where the spool's parent directory should be")
        spool, code = tmp_path / "a-file" / "spool", "ENOTDIR"
        results = make_calls(sim, spool, reader)
    else:
        with tmpfs(tmp_path / "ro", size=DISK_BYTES, read_only=True) as mounted:
            if not mounted:
                pytest.skip("mount is not allowed here (a read-only tmpfs is the only honest EROFS for root)")
            spool, code = tmp_path / "ro" / "spool", "EROFS"
            results = make_calls(sim, spool, reader)
    check_results(results)
    assert dropped(reader) == {code: CALLS}
    spool_warnings = [r.getMessage() for r in caplog.records if r.name == "collector.spool"]
    assert len(spool_warnings) == 1 and "cannot write spans" in spool_warnings[0]
    # The salt failure is reported once too, by the collector's own guard; nothing else was logged.
    others = [r.getMessage() for r in caplog.records if r.name != "collector.spool"]
    assert len(others) == 1 and "internal error in _install_salt" in others[0]
