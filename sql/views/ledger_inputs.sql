-- What the stores (ledger/stores.py) are derived from, as one row: the number of calls, attempts and
-- period events (all three append-only), the newest ingest time, and a hash of the price books.
-- A store is read only while these equal the ones it was refreshed with.
select
    (select count(*) from calls)::bigint as calls,
    (select count(*) from attempts)::bigint as attempts,
    (select count(*) from period_events)::bigint as period_events,
    (select max(ingested_at) from calls) as calls_ingested_through,
    hash(
        (select list(r) from (from official_rates order by all) as r),
        (select list(c) from (from provider_contracts order by all) as c),
        (select list(f) from (from fx_rates order by all) as f)
    ) as price_books
