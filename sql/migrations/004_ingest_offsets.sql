-- How far ingest has read each file it reads incrementally (spool .jsonl.part files still being
-- written, sealed spool files until they move to done/, and OpenTelemetry Collector output files).
-- Keyed by path (spool files: the sealed *.jsonl name, also while still *.jsonl.part). A file whose
-- first line no longer matches first_line_sha256, or that shrank below offset_bytes, was replaced
-- and is read again from the start (call_id dedupe keeps that idempotent).
create table ingest_offsets (
    path varchar not null,
    first_line_sha256 varchar not null,
    offset_bytes bigint not null,             -- bytes consumed: always just past a complete line
    lines_read bigint not null,               -- lines consumed, so line numbers continue after it
    updated_at timestamptz not null default now()
);
