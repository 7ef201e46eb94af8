-- Facts observed by the collector, stored unchanged. One row per logical SDK call (= one span).
-- Token columns hold what the API reported; null means "not reported", never zero.
-- Input counts include their cached part; cached_* columns are subsets of them.
create table calls (
    call_id varchar not null,                 -- span id, 16 hex chars
    trace_id varchar not null,                -- 32 hex chars
    started_at timestamptz not null,
    ended_at timestamptz,
    duration_s double,
    service_name varchar,
    route varchar not null,                   -- images.generate | images.edit | responses
    route_owner varchar not null,             -- openai | gateway name
    server_address varchar,
    server_port integer,
    requested_model varchar,                  -- image model requested (Responses: tools[].model)
    requested_model_assumed boolean,          -- Responses tool model not set: documented default recorded
    reported_model varchar,                   -- model the server reported, when it reports one
    mainline_model varchar,                   -- Responses only: top-level model
    mainline_reported_model varchar,          -- Responses only: response.model
    service_tier varchar not null default 'standard',
    prompt_hash varchar,
    prompt_length integer,
    prompt_text varchar,                      -- only when the app opted in to prompt capture
    n integer,
    size_requested varchar,
    size_effective varchar,
    quality_requested varchar,
    quality_effective varchar,
    output_format_requested varchar,
    output_format_effective varchar,
    output_compression integer,
    background_requested varchar,
    background_effective varchar,
    stream boolean not null default false,
    partial_images_requested integer,
    partial_images_received integer,
    input_image_count integer,
    mask boolean,
    images_returned integer,
    text_input_tokens bigint,
    image_input_tokens bigint,
    cached_text_input_tokens bigint,
    cached_image_input_tokens bigint,
    image_output_tokens bigint,
    text_output_tokens bigint,
    input_tokens bigint,                      -- gen_ai.usage.input_tokens as recorded
    output_tokens bigint,                     -- gen_ai.usage.output_tokens as recorded
    mainline_input_tokens bigint,
    mainline_cached_input_tokens bigint,
    mainline_output_tokens bigint,
    usage_source varchar not null,            -- reported | missing
    cache_status varchar,                     -- reported | unknown | not_applicable
    status varchar not null,                  -- ok | error
    error_type varchar,
    error_code varchar,
    moderation_stage varchar,
    retry_reason varchar,
    attempt_count integer not null default 1,
    request_id varchar,
    tags json,                                -- {"feature": "hero", "team": "growth", ...}
    source_file varchar,                      -- spool / OTLP file the span came from
    ingested_at timestamptz not null default now()
);

-- One row per HTTP attempt, the SDK's own retries included.
create table attempts (
    call_id varchar not null,
    attempt_number integer not null,          -- 0-based, = x-stainless-retry-count
    started_at timestamptz,
    duration_s double,
    status_code integer,                      -- null for timeouts and connection errors
    error_type varchar,
    error_code varchar,
    retry_reason varchar,                     -- null for a successful attempt
    request_id varchar,
    retry_after_s double
);

-- Storage pointers to final images; the bytes live in the image store, never here.
create table images (
    call_id varchar not null,
    image_index integer not null,
    uri varchar,
    sha256 varchar,
    bytes bigint,
    format varchar,
    public_url varchar,
    delete_after timestamptz
);
