"""Migrations: an empty database gets exactly the declared columns and types; migrating twice is a no-op."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ledger import sqlfiles
from ledger.db import applied_migrations, connect, migrate

V, TSZ, D, DBL, INT, BI, B = "VARCHAR", "TIMESTAMP WITH TIME ZONE", "DATE", "DOUBLE", "INTEGER", "BIGINT", "BOOLEAN"

# Written out from sql/migrations/001_facts.sql, 002_price_books.sql and 003_ingest_log.sql.
EXPECTED: dict[str, dict[str, str]] = {
    "calls": {
        "call_id": V,
        "trace_id": V,
        "started_at": TSZ,
        "ended_at": TSZ,
        "duration_s": DBL,
        "service_name": V,
        "route": V,
        "route_owner": V,
        "server_address": V,
        "server_port": INT,
        "requested_model": V,
        "requested_model_assumed": B,
        "reported_model": V,
        "mainline_model": V,
        "mainline_reported_model": V,
        "service_tier": V,
        "prompt_hash": V,
        "prompt_length": INT,
        "prompt_text": V,
        "n": INT,
        "size_requested": V,
        "size_effective": V,
        "quality_requested": V,
        "quality_effective": V,
        "output_format_requested": V,
        "output_format_effective": V,
        "output_compression": INT,
        "background_requested": V,
        "background_effective": V,
        "stream": B,
        "partial_images_requested": INT,
        "partial_images_received": INT,
        "input_image_count": INT,
        "mask": B,
        "images_returned": INT,
        "text_input_tokens": BI,
        "image_input_tokens": BI,
        "cached_text_input_tokens": BI,
        "cached_image_input_tokens": BI,
        "image_output_tokens": BI,
        "text_output_tokens": BI,
        "input_tokens": BI,
        "output_tokens": BI,
        "mainline_input_tokens": BI,
        "mainline_cached_input_tokens": BI,
        "mainline_output_tokens": BI,
        "usage_source": V,
        "cache_status": V,
        "status": V,
        "error_type": V,
        "error_code": V,
        "moderation_stage": V,
        "retry_reason": V,
        "attempt_count": INT,
        "request_id": V,
        "tags": "JSON",
        "source_file": V,
        "ingested_at": TSZ,
    },
    "attempts": {
        "call_id": V,
        "attempt_number": INT,
        "started_at": TSZ,
        "duration_s": DBL,
        "status_code": INT,
        "error_type": V,
        "error_code": V,
        "retry_reason": V,
        "request_id": V,
        "retry_after_s": DBL,
    },
    "images": {
        "call_id": V,
        "image_index": INT,
        "uri": V,
        "sha256": V,
        "bytes": BI,
        "format": V,
        "public_url": V,
        "delete_after": TSZ,
    },
    "official_rates": {
        "model": V,
        "token_class": V,
        "tier": V,
        "usd_per_1m": DBL,
        "effective_from": D,
        "effective_to": D,
        "source_url": V,
        "checked_on": D,
        "notes": V,
        "book_file": V,
    },
    "provider_contracts": {
        "provider": V,
        "contract_id": V,
        "model_pattern": V,
        "unit": V,
        "token_class": V,
        "price": DBL,
        "currency": V,
        "charge_failed_calls": B,
        "effective_from": D,
        "effective_to": D,
        "source": V,
        "notes": V,
        "book_file": V,
    },
    "fx_rates": {"currency": V, "day": D, "usd_per_unit": DBL, "source": V, "book_file": V},
    "price_book_loads": {"loaded_at": TSZ, "version": V, "files": "VARCHAR[]"},
    "ingested_files": {
        "path": V,
        "size_bytes": BI,
        "spans_seen": BI,
        "calls_added": BI,
        "lines_rejected": BI,
        "ingested_at": TSZ,
    },
    "rejected_lines": {"path": V, "line_number": BI, "error": V, "rejected_at": TSZ},
    "image_deletions": {"sha256": V, "uri": V, "deleted_at": TSZ, "reason": V},
    "_migrations": {"name": V, "applied_at": TSZ},
}

# The pricing views' interface (BRIEF "Ledger facts and views"), in column order.
EXPECTED_VIEWS = {
    "priced_calls": [
        "call_id",
        "trace_id",
        "started_at",
        "call_day",
        "route",
        "route_owner",
        "server_address",
        "service_name",
        "service_tier",
        "requested_model",
        "reported_model",
        "billed_model",
        "mainline_model",
        "size",
        "quality",
        "n",
        "stream",
        "partial_images_requested",
        "partial_images_received",
        "input_image_count",
        "images_returned",
        "text_input_tokens",
        "image_input_tokens",
        "cached_text_input_tokens",
        "cached_image_input_tokens",
        "image_output_tokens",
        "text_output_tokens",
        "mainline_input_tokens",
        "mainline_cached_input_tokens",
        "mainline_output_tokens",
        "usage_source",
        "cache_status",
        "image_official_cost_usd",
        "mainline_official_cost_usd",
        "official_cost_usd",
        "official_status",
        "contract_id",
        "contract_cost",
        "contract_currency",
        "charged_attempts",
        "contract_cost_usd",
        "billed_cost_usd",
        "cost_basis",
        "pricing_status",
        "unpriced_reason",
        "status",
        "error_type",
        "error_code",
        "moderation_stage",
        "retry_reason",
        "attempts",
        "duration_s",
        "request_id",
        "tags",
    ],
    "spend_daily": [
        "day",
        "route_owner",
        "billed_model",
        "cost_basis",
        "calls",
        "failed_calls",
        "images",
        "official_cost_usd",
        "contract_cost_usd",
        "billed_cost_usd",
        "unpriced_calls",
    ],
    "retry_causes": ["cause", "route_owner", "attempts", "calls", "final_failures", "failed_attempt_cost_usd"],
}


def columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "select column_name, data_type from information_schema.columns where table_name = ? order by ordinal_position",
        [table],
    ).fetchall()
    return dict(rows)


def test_migrating_an_empty_database_gives_the_declared_schema(tmp_path: Path) -> None:
    con = connect(tmp_path / "ledger.duckdb")
    try:
        applied = migrate(con)
        assert applied == [name for name, _sql in sqlfiles.migrations()]
        assert applied[:3] == ["001_facts", "002_price_books", "003_ingest_log"]
        assert applied_migrations(con) == applied
        for table, expected in EXPECTED.items():
            assert columns(con, table) == expected, table
        for view, expected_columns in EXPECTED_VIEWS.items():
            assert list(columns(con, view)) == expected_columns, view
    finally:
        con.close()


def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "ledger.duckdb"
    con = connect(path)
    try:
        first = migrate(con)
        con.execute("insert into fx_rates values ('CNY', date '2026-11-01', 0.14, 'test', 'x.toml')")
        recorded = con.execute("select name, applied_at from _migrations order by name").fetchall()
    finally:
        con.close()
    con = connect(path)  # a second process run, on the same file
    try:
        assert migrate(con) == []
        assert con.execute("select name, applied_at from _migrations order by name").fetchall() == recorded
        assert [row[0] for row in recorded] == first
        assert con.execute("select count(*) from fx_rates").fetchall() == [(1,)]
        for table, expected in EXPECTED.items():
            assert columns(con, table) == expected, table
    finally:
        con.close()


def test_views_are_recreated_only_when_the_view_files_or_store_tables_changed(tmp_path: Path, monkeypatch) -> None:
    """Recreating ~30 views binds each one (~1 s on a large ledger), so a writer's open skips it when every view
    carries the current fingerprint (its comment) and every store table has its view's columns."""
    path = tmp_path / "ledger.duckdb"

    def definition(con: duckdb.DuckDBPyConnection, view: str) -> str:
        return con.execute("select sql from duckdb_views() where view_name = ?", [view]).fetchall()[0][0]

    con = connect(path)
    try:
        migrate(con)
        [fingerprint] = {r[0] for r in con.execute("select comment from duckdb_views() where not internal").fetchall()}
        assert fingerprint.startswith("imagecost ")
        # a view changed behind imagecost's back, comment kept: the next open leaves it (nothing was recreated)
        con.execute("create or replace view spend_daily as select 1 as marker")
        con.execute(f"comment on view spend_daily is '{fingerprint}'")
        migrate(con)
        assert definition(con, "spend_daily") == "CREATE VIEW spend_daily AS SELECT 1 AS marker;"
        # a store table whose columns differ from its view's: everything is recreated
        con.execute("alter table dash_spend_cube_store drop column quality")
        migrate(con)
        assert "marker" not in definition(con, "spend_daily")
        assert "quality" in columns(con, "dash_spend_cube_store")
        # a dropped view: recreated
        con.execute("drop view dash_retry_spend")
        migrate(con)
        assert columns(con, "dash_retry_spend")
        # the view files changed (a new version): recreated, with the new fingerprint
        con.execute("create or replace view spend_daily as select 1 as marker")
        con.execute(f"comment on view spend_daily is '{fingerprint}'")
        views = sqlfiles.views()
        monkeypatch.setattr(sqlfiles, "views", lambda: [*views, ("new_view", "select 42 as answer")])
        migrate(con)
        assert "marker" not in definition(con, "spend_daily")
        assert con.execute("select answer from new_view").fetchall() == [(42,)]
        comments = {r[0] for r in con.execute("select comment from duckdb_views() where not internal").fetchall()}
        assert len(comments) == 1 and comments != {fingerprint}
    finally:
        con.close()
