-- depends: priced_calls, dash_failed_attempts
-- store: dash_failure_calls
-- Retry causes page, money side: one row per call that failed or needed a retry, with what it was
-- billed and how many of its attempts failed (unacknowledged: a timeout or dropped connection, whose
-- retry may be billed twice since the SDK sends no idempotency key, reference §9, §12 item 12).
with attempt_counts as (
    select
        call_id,
        count(*)::bigint as failed_attempts,
        count(*) filter (where cause in ('timeout', 'connection', 'stream_interrupted'))::bigint
            as unacknowledged_attempts
    from dash_failed_attempts
    group by call_id
),

final as (
    select
        priced.call_id,
        priced.call_day as day,
        priced.route_owner,
        coalesce(priced.retry_reason, priced.error_code, priced.error_type, 'unclassified') as cause,
        priced.status,
        priced.cost_basis,
        priced.pricing_status,
        priced.billed_cost_usd,
        coalesce(counts.failed_attempts, 0) as failed_attempts,
        coalesce(counts.unacknowledged_attempts, 0) as unacknowledged_attempts
    from priced_calls as priced
    left join attempt_counts as counts on counts.call_id = priced.call_id
    where priced.status = 'error' or counts.call_id is not null
)

select * from final
