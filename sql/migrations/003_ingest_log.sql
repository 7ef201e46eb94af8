-- Ingest bookkeeping: which spool/OTLP files went in, and lines that were set aside.
create table ingested_files (
    path varchar not null,
    size_bytes bigint not null,
    spans_seen bigint not null,
    calls_added bigint not null,
    lines_rejected bigint not null,
    ingested_at timestamptz not null default now()
);

create table rejected_lines (
    path varchar not null,
    line_number bigint not null,
    error varchar not null,
    rejected_at timestamptz not null default now()
);

create table image_deletions (
    sha256 varchar not null,
    uri varchar not null,
    deleted_at timestamptz not null default now(),
    reason varchar not null                   -- retention | missing
);
