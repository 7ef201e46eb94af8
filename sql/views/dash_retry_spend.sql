-- depends: priced_calls
-- Retry causes page: money tied to failures, per call that failed or needed a retry.
-- * spend on failed calls: what a call that ended in an error was still billed (usage reported on a
--   failure, or a contract that charges failed calls);
-- * spend at risk: a retry after a timeout or a dropped connection may be billed twice, because the
--   SDK sends no idempotency key (reference §9, §12 item 12) — the call's cost once per such retry.
with attempt_counts as (
    select
        call_id,
        count(*)::bigint as failed_attempts,
        count(*) filter (where retry_reason in ('timeout', 'connection', 'stream_interrupted'))::bigint
            as unacknowledged_attempts
    from attempts
    where retry_reason is not null or error_type is not null or error_code is not null
    group by call_id
),

calls_with_failures as (
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
),

final as (
    select
        day,
        route_owner,
        cause,
        count(*)::bigint as calls,
        count(*) filter (where status = 'error')::bigint as failed_calls,
        sum(failed_attempts)::bigint as failed_attempts,
        count(*) filter (where status = 'error' and pricing_status <> 'priced')::bigint as unpriced_failed_calls,
        sum(billed_cost_usd) filter (where status = 'error' and pricing_status = 'priced')::double
            as failed_spend_usd,
        sum(billed_cost_usd * unacknowledged_attempts) filter (
            where status = 'ok' and pricing_status = 'priced'
        )::double as at_risk_usd
    from calls_with_failures
    group by all
)

select * from final
