"""Image retention: expired files deleted and recorded, shared content kept, missing files recorded, dry run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collector.spool import SpoolSpanExporter
from ledger.cli import cli
from ledger.db import connect
from ledger.images_prune import local_path, prune_images
from ledger.ingest import ingest_paths
from tests.fixtures.ingest import FixedIds, make_image_span, tracer_for

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PAST, FUTURE = "2025-12-01T00:00:00Z", "2030-06-01T00:00:00Z"  # the CLI test runs between the two


def image(index: int, uri: str, sha: str, delete_after: str | None) -> dict[str, Any]:
    return {
        "IMAGE_INDEX": index,
        "IMAGE_URI": uri,
        "IMAGE_SHA256": sha * 64,
        "IMAGE_BYTES": 1,
        "IMAGE_FORMAT": "png",
        "IMAGE_DELETE_AFTER": delete_after,
    }


@pytest.fixture
def store(tmp_path: Path, spool_dir: Path) -> tuple[Path, Path]:
    """A ledger whose calls point at files of an image store, with every retention case."""
    images = tmp_path / "images"
    images.mkdir()
    sizes = {"a": 1000, "b": 10, "d": 20, "g": 30, "i": 250}
    for name, size in sizes.items():
        (images / f"{name}.png").write_bytes(b"x" * size)
    uri = {name: (images / f"{name}.png").as_uri() for name in sizes}
    calls = [
        [image(0, uri["a"], "a", PAST)],  # expired, only pointer: deleted
        [image(0, uri["b"], "b", PAST)],  # expired, but the same content is kept longer by the next call
        [image(0, uri["b"], "b", FUTURE)],
        [image(0, uri["d"], "d", PAST), image(1, uri["d"], "d", None)],  # kept forever by its twin
        [image(0, (images / "f.png").as_uri(), "f", PAST)],  # expired, already gone: recorded as missing
        [image(0, uri["g"], "g", FUTURE)],  # not expired
        [image(0, "s3://bucket/h.png", "h", PAST)],  # not a local file: skipped
        [image(0, str(images / "i.png"), "i", PAST)],  # a plain path works like a file:// URI
    ]
    exporter = SpoolSpanExporter(spool_dir)
    tracer = tracer_for(exporter, id_generator=FixedIds())
    for pointers in calls:
        make_image_span(tracer, images=pointers)
    exporter.shutdown()
    ledger = tmp_path / "ledger.duckdb"
    assert ingest_paths(ledger, [spool_dir]).images_added == 9
    return ledger, images


def deletions(ledger: Path) -> list[tuple[str, str, str]]:
    con = connect(ledger, read_only=True)
    try:
        return con.execute("select sha256, uri, reason from image_deletions order by sha256").fetchall()
    finally:
        con.close()


def test_prune_deletes_only_what_every_pointer_lets_go(store: tuple[Path, Path]) -> None:
    ledger, images = store
    result = prune_images(ledger, now=NOW)
    assert [(d.path.name, d.bytes, d.reason) for d in result.deletions] == [
        ("a.png", 1000, "retention"),
        ("f.png", 0, "missing"),
        ("i.png", 250, "retention"),
    ]
    assert result.bytes_freed == 1000 + 250
    assert result.skipped == [("s3://bucket/h.png", "not a local file (only paths and file:// URIs are pruned)")]
    assert sorted(p.name for p in images.iterdir()) == ["b.png", "d.png", "g.png"]
    assert deletions(ledger) == [
        ("a" * 64, (images / "a.png").as_uri(), "retention"),
        ("f" * 64, (images / "f.png").as_uri(), "missing"),
        ("i" * 64, str(images / "i.png"), "retention"),
    ]
    again = prune_images(ledger, now=NOW)  # recorded deletions are not attempted twice
    assert (again.deletions, again.bytes_freed) == ([], 0)
    later = prune_images(ledger, now=datetime(2030, 7, 1, tzinfo=UTC))  # the longer retention ran out too
    assert [(d.path.name, d.reason) for d in later.deletions] == [("b.png", "retention"), ("g.png", "retention")]
    assert sorted(p.name for p in images.iterdir()) == ["d.png"]  # pointed to with no delete_after


def test_dry_run_changes_nothing(store: tuple[Path, Path]) -> None:
    ledger, images = store
    result = prune_images(ledger, now=NOW, dry_run=True)
    assert [(d.path.name, d.reason) for d in result.deletions] == [
        ("a.png", "retention"),
        ("f.png", "missing"),
        ("i.png", "retention"),
    ]
    assert result.lines()[0] == f"would delete {images / 'a.png'} (1,000 bytes)"
    assert result.lines()[-1] == "would delete 2 file(s), 1,250 bytes to free"
    assert sorted(p.name for p in images.iterdir()) == ["a.png", "b.png", "d.png", "g.png", "i.png"]
    assert deletions(ledger) == []


def test_cli_prune_prints_each_file_and_the_bytes_freed(store: tuple[Path, Path]) -> None:
    ledger, images = store
    runner = CliRunner()
    dry = runner.invoke(cli, ["images", "prune", "--ledger", str(ledger), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[-1] == "would delete 2 file(s), 1,250 bytes to free"
    done = runner.invoke(cli, ["images", "prune", "--ledger", str(ledger)])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [
        f"deleted {images / 'a.png'} (1,000 bytes)",
        f"missing {images / 'f.png'} (already gone; recorded)",
        f"deleted {images / 'i.png'} (250 bytes)",
        "skipped s3://bucket/h.png: not a local file (only paths and file:// URIs are pruned)",
        "deleted 2 file(s), 1,250 bytes freed",
    ]


def test_local_path_reads_paths_and_file_uris() -> None:
    assert local_path("file:///var/images/a%20b.png") == Path("/var/images/a b.png")
    assert local_path("/var/images/c.png") == Path("/var/images/c.png")
    assert local_path("https://cdn.example.com/c.png") is None
