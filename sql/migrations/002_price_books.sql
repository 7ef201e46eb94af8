-- Price books, reloaded from the sourced TOML files. Official OpenAI list prices and provider
-- contracts never share a table or a column.
create table official_rates (
    model varchar not null,
    token_class varchar not null,             -- text_input | cached_text_input | image_input | cached_image_input | image_output | text_output
    tier varchar not null,                    -- standard | batch
    usd_per_1m double not null,               -- USD per 1,000,000 tokens
    effective_from date not null,             -- inclusive, UTC day
    effective_to date,                        -- exclusive; null = still in force
    source_url varchar not null,
    checked_on date not null,
    notes varchar,
    book_file varchar not null
);

create table provider_contracts (
    provider varchar not null,                -- = calls.route_owner
    contract_id varchar not null,
    model_pattern varchar not null,           -- glob over the requested model, e.g. gpt-image-2*
    unit varchar not null,                    -- per_call | per_image | per_1m_tokens
    token_class varchar,                      -- per_1m_tokens only
    price double not null,                    -- in `currency` per unit
    currency varchar not null,                -- ISO 4217
    charge_failed_calls boolean not null,
    effective_from date not null,
    effective_to date,
    source varchar not null,
    notes varchar,
    book_file varchar not null
);

create table fx_rates (
    currency varchar not null,
    day date not null,
    usd_per_unit double not null,
    source varchar not null,
    book_file varchar not null
);

-- One row per load of the price books: which files, with which content hash.
create table price_book_loads (
    loaded_at timestamptz not null default now(),
    version varchar not null,                 -- sha256 over the files' contents
    files varchar[] not null
);
