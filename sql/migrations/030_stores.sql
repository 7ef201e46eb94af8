-- Stores (ledger/stores.py): tables that hold what a live view computed, so large ledgers read fast.
-- One row per store: the ledger inputs (ledger_inputs view) it was last brought up to date with. A
-- store whose inputs differ from the ledger's is never read; its view computes live instead.
create table store_state (
    store varchar primary key,                -- the view it serves, e.g. priced_calls
    calls bigint not null,                    -- count of calls then
    attempts bigint not null,                 -- count of attempts then
    price_books ubigint not null,             -- ledger_inputs.price_books then
    period_events bigint not null,            -- count of period_events (closes and reopens) then
    calls_ingested_through timestamptz,       -- newest calls.ingested_at then: a refresh appends later calls
    refreshed_at timestamptz not null,
    rebuilt_at timestamptz not null           -- last full rebuild (price books changed, or store created)
);
