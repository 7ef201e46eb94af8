-- depends: dash_failure_calls
-- Retry causes page: money tied to failures, per UTC day, route owner and cause.
-- * spend on failed calls: what a call that ended in an error was still billed (usage reported on a
--   failure, or a contract that charges failed calls);
-- * spend at risk: a retry after a timeout or a dropped connection may be billed twice, because the
--   SDK sends no idempotency key (reference §9, §12 item 12) — the call's cost once per such retry.
with source as (
    select * from dash_failure_calls
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
    from source
    group by all
)

select * from final
