"""ledger.facts: by-name alignment, defaults for missing columns, idempotent inserts, one transaction."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from ledger.db import connect
from ledger.facts import insert_attempts, insert_calls, insert_images
from tests.fixtures.ledger import attempt_row, call_row, frame


def test_insert_calls_is_idempotent_and_aligns_columns_by_name(ledger_file: Path) -> None:
    first, second = call_row(), call_row()
    minimal = {  # only the not-null columns without a default
        "call_id": "00000000000000ff",
        "trace_id": "f" * 32,
        "started_at": first["started_at"],
        "route": "images.generate",
        "route_owner": "openai",
        "usage_source": "missing",
        "status": "error",
    }
    con = connect(ledger_file)
    try:
        # columns in a different order than the table, as a pyarrow Table
        reordered = frame([first]).select(list(reversed(frame([first]).columns))).to_arrow()
        assert insert_calls(con, reordered) == 1
        assert insert_calls(con, frame([first, second])) == 1  # `first` is already there
        assert insert_calls(con, frame([second])) == 0
        assert insert_calls(con, pa.Table.from_pylist([minimal])) == 1
        assert insert_calls(con, frame([call_row(call_id="dup0000000000000")] * 2)) == 1  # repeated in one batch
        assert insert_calls(con, pl.DataFrame()) == 0
        rows = con.execute(
            "select service_tier, stream, attempt_count, text_input_tokens, tags, ingested_at is not null "
            "from calls where call_id = '00000000000000ff'"
        ).fetchall()
        assert rows == [("standard", False, 1, None, None, True)]  # table defaults, else null
        assert con.execute("select count(*), count(distinct call_id) from calls").fetchall() == [(4, 4)]
        assert con.execute(
            "select text_input_tokens, image_output_tokens from calls where call_id = ?", [first["call_id"]]
        ).fetchall() == [(81, 1756)]
    finally:
        con.close()


def test_attempts_and_images_are_idempotent_on_their_keys(ledger_file: Path) -> None:
    call = call_row()
    attempts = frame([attempt_row(call["call_id"], 0), attempt_row(call["call_id"], 1, status_code=200)])
    image = pl.DataFrame({"call_id": [call["call_id"]], "image_index": [0], "sha256": ["ab" * 32], "bytes": [1234]})
    con = connect(ledger_file)
    try:
        assert insert_attempts(con, attempts) == 2
        assert insert_attempts(con, attempts) == 0
        assert insert_images(con, image) == 1
        assert insert_images(con, image) == 0
        assert con.execute("select uri, bytes from images").fetchall() == [(None, 1234)]
    finally:
        con.close()


def test_bad_batches_are_refused(ledger_file: Path) -> None:
    con = connect(ledger_file)
    try:
        with pytest.raises(ValueError, match=r"^calls: no such column\(s\) prompt_tokens; expected some of "):
            insert_calls(con, frame([call_row(prompt_tokens=3)]))
        with pytest.raises(ValueError, match=r"^attempts: the batch needs key column\(s\) attempt_number$"):
            insert_attempts(con, pl.DataFrame({"call_id": ["a"]}))
    finally:
        con.close()


def test_inserts_join_the_callers_transaction(ledger_file: Path) -> None:
    call = call_row()
    con = connect(ledger_file)
    try:
        con.execute("begin")
        assert insert_calls(con, frame([call])) == 1
        assert insert_attempts(con, frame([attempt_row(call["call_id"], 0)])) == 1
        con.execute("rollback")  # the caller decides: both inserts go
        assert con.execute("select (select count(*) from calls), (select count(*) from attempts)").fetchall() == [
            (0, 0)
        ]
        assert insert_calls(con, frame([call])) == 1  # outside a transaction: its own, committed
        con.execute("begin")
        con.execute("rollback")
        assert con.execute("select count(*) from calls").fetchall() == [(1,)]
    finally:
        con.close()
