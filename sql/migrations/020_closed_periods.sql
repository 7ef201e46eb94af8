-- Closed periods (docs/closing.md). Both tables are append-only: a close adds frozen rows under a new
-- close_id and a 'closed' event; a reopen adds a 'reopened' event, and the frozen rows of that close stay
-- (superseded: no longer read by booked_calls, kept for the audit trail).

-- One row per period event, in order. A month is closed while its latest event is 'closed'.
create table period_events (
    event_id bigint not null,                 -- 1, 2, ... in the order the events happened
    month date not null,                      -- first UTC day of the month
    event varchar not null,                   -- closed | reopened
    close_id bigint not null,                 -- closed: the new close; reopened: the close it supersedes
    event_at timestamptz not null,
    by_user varchar not null,                 -- OS user who ran the command
    reason varchar,                           -- required for reopened, optional for closed
    price_book_version varchar,               -- latest price_book_loads.version at the event (null: never loaded)
    -- the month's booked rows after the event: closed = the frozen rows, reopened = what it reads live
    row_count bigint not null,
    calls bigint not null,                    -- sum(call_count): adjustment rows of repriced calls count 0
    adjustments bigint not null,              -- rows that are adjustments to earlier closed months
    unpriced_rows bigint not null,            -- rows whose pricing_status is not 'priced'
    images bigint not null,
    -- money as imagecost report sums it; 0 for a month without rows, null when none of its rows is priced
    official_usd double,                      -- billed_cost_usd of OpenAI-routed rows (official rates)
    contract_usd double,                      -- billed_cost_usd of provider-routed rows (contracts, in USD)
    billed_usd double                         -- both
);

-- The booked rows of a month as they were when it was closed: the month's calls (booking_kind 'frozen')
-- and the adjustments to earlier closed months that were booked into it ('adjustment'), with every
-- column of priced_calls at that moment.
create table frozen_calls (
    close_id bigint not null,                 -- period_events.close_id of the 'closed' event
    booking_day date not null,                -- call_day for 'frozen' rows; first day of the month for adjustments
    booking_kind varchar not null,            -- frozen | adjustment
    call_count integer not null,              -- 1 per call; adjustments: 1 for a late call, else 0
    adjusts_call_id varchar,                  -- adjustments: the call they adjust
    original_day date,                        -- adjustments: that call's UTC day
    adjustment_reason varchar,                -- adjustments: late_call | status_change | price_change
    -- priced_calls columns (sql/views/priced_calls.sql), as they were at close time
    call_id varchar not null,
    trace_id varchar,
    started_at timestamptz,
    call_day date not null,
    route varchar,
    route_owner varchar,
    server_address varchar,
    service_name varchar,
    service_tier varchar,
    requested_model varchar,
    reported_model varchar,
    billed_model varchar,
    mainline_model varchar,
    size varchar,
    quality varchar,
    n integer,
    stream boolean,
    partial_images_requested integer,
    partial_images_received integer,
    input_image_count integer,
    images_returned integer,
    text_input_tokens bigint,
    image_input_tokens bigint,
    cached_text_input_tokens bigint,
    cached_image_input_tokens bigint,
    image_output_tokens bigint,
    text_output_tokens bigint,
    mainline_input_tokens bigint,
    mainline_cached_input_tokens bigint,
    mainline_output_tokens bigint,
    usage_source varchar,
    cache_status varchar,
    image_official_cost_usd double,
    mainline_official_cost_usd double,
    official_cost_usd double,
    official_status varchar,
    contract_id varchar,
    contract_cost double,
    contract_currency varchar,
    charged_attempts integer,
    contract_cost_usd double,
    billed_cost_usd double,
    cost_basis varchar,
    pricing_status varchar,
    unpriced_reason varchar,
    status varchar,
    error_type varchar,
    error_code varchar,
    moderation_stage varchar,
    retry_reason varchar,
    attempts integer,
    duration_s double,
    request_id varchar,
    tags json
);

-- What each close knew about the months it froze: the month itself, and each earlier closed month whose
-- adjustments it froze. While a closed month's pricing inputs and call count are unchanged since then,
-- nothing about it can have changed, so booked_calls skips re-pricing it (sql/views/close_stale.sql).
create table frozen_months (
    close_id bigint not null,
    month date not null,                      -- first UTC day of the month
    pricing_inputs varchar not null,          -- close_month_inputs.pricing_inputs at that moment
    calls bigint not null                     -- calls of the month in the ledger at that moment
);
