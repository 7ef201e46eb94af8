-- Reconciliation inputs: what OpenAI billed (Costs API), what it counted (Usage API, images) and what a
-- provider invoiced. Imports are idempotent: each table has a natural key and a re-import replaces the
-- rows it already holds (ledger/reconcile/store.py).

-- One result of one daily bucket of GET /v1/organization/costs (reference §10.2).
-- Key: (start_time, project_id, line_item, api_key_id, user_id, api_source); nulls = "not grouped by".
create table openai_costs (
    start_time timestamptz not null,          -- bucket start (UTC midnight)
    end_time timestamptz not null,
    project_id varchar,
    line_item varchar,                        -- e.g. "gpt-image-2 image, output" (mapped by ledger/books/line_items.toml)
    api_key_id varchar,
    user_id varchar,
    api_source varchar,
    amount double not null,                   -- amount.value, in `currency`
    currency varchar not null,                -- amount.currency, lower-case ISO 4217 ("usd")
    quantity double,
    quantity_unit varchar,                    -- tokens | 1000_tokens | images | ...
    group_by varchar not null,                -- the grouping the export used, e.g. "line_item,project_id"
    imported_from varchar not null,           -- file path, or "api" for a live fetch
    imported_at timestamptz not null default now()
);

-- One result of one bucket of GET /v1/organization/usage/images (reference §10.1): counts, no tokens.
create table openai_image_usage (
    start_time timestamptz not null,
    end_time timestamptz not null,
    project_id varchar,
    user_id varchar,
    api_key_id varchar,
    model varchar,
    size varchar,
    source varchar,                           -- image.generation | image.edit | image.variation
    images bigint not null,
    num_model_requests bigint not null,
    group_by varchar not null,
    imported_from varchar not null,
    imported_at timestamptz not null default now()
);

-- ledger/books/line_items.toml as the views read it; replaced whenever a reconcile command runs.
create table recon_line_item_map (
    position integer not null,                -- first matching rule wins
    pattern varchar not null,                 -- as written in the file
    regex varchar not null,                   -- the pattern as an anchored, case-insensitive regex
    model varchar,                            -- fixed model, else regex group 1 ({model})
    token_class varchar not null,
    tier varchar not null,
    source_file varchar not null
);

-- Lines of a provider's invoice or usage export, read through ledger/books/invoice_mappings.toml.
-- One invoice = one file's content (invoice_id = its sha256): importing the same content again replaces
-- its lines, so it is stored once; a corrected invoice is a new invoice_id and is reconciled on its own.
create table provider_invoice_lines (
    provider varchar not null,                -- = calls.route_owner
    invoice_id varchar not null,              -- sha256 of the file's bytes, hex
    imported_from varchar not null,           -- file path as given
    line_number bigint not null,              -- 1-based data row (CSV) or record index (JSON)
    line_time timestamptz,
    request_id varchar,
    call_id varchar,
    model varchar,
    amount double not null,
    currency varchar not null,                -- ISO 4217, upper-case
    imported_at timestamptz not null default now()
);
