"""Ingest: spool files and OpenTelemetry Collector OTLP/JSON files -> the ledger.

    from ledger.ingest import ingest_paths
    result = ingest_paths("imagecost.duckdb", [".imagecost/spool", "otelcol-traces.jsonl"])
    print(result.summary())

Idempotent (a span is stored once however often it is read), safe while apps keep writing, one
transaction per batch. ``ledger.ingest.mapping`` is the one table from span attributes to columns.
"""

from __future__ import annotations

from ledger.ingest.run import FileReport, IngestResult, ingest_paths

__all__ = ["FileReport", "IngestResult", "ingest_paths"]
