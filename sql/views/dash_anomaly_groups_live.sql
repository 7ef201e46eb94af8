-- depends: priced_calls
-- store: dash_anomaly_groups (by day)
-- Anomalies page: three checks grouped per UTC day, so the page adds days up instead of scanning every
-- call of the period: model drift (the server reported another model than the one requested; a dated
-- snapshot of it is not drift), partial images received ≠ requested, and unpriced calls. Every measure
-- adds up over days: counts, first and last seen, and the latest call (with its reason for unpriced
-- calls; ties on the start time broken by call id). By day: a call counts on its own UTC day only.
with calls as (
    select * from priced_calls
),

drift as (
    select
        'drift' as check_name,
        call_day as day,
        route_owner,
        requested_model,
        reported_model,
        count(*)::bigint as calls,
        min(started_at) as first_seen,
        max(started_at) as last_seen,
        arg_max(call_id, (started_at, call_id)) as latest_call_id
    from calls
    where reported_model is not null
        and reported_model <> requested_model
        and reported_model not like requested_model || '-____-__-__'
    group by all
),

partials as (
    select
        'partials' as check_name,
        call_day as day,
        route_owner,
        route,
        partial_images_requested,
        coalesce(partial_images_received, 0) as partial_images_received,
        status,
        count(*)::bigint as calls,
        min(started_at) as first_seen,
        max(started_at) as last_seen,
        arg_max(call_id, (started_at, call_id)) as latest_call_id
    from calls
    where coalesce(partial_images_requested, 0) > 0
        and coalesce(partial_images_received, 0) <> partial_images_requested
    group by all
),

unpriced as (
    select
        'unpriced' as check_name,
        call_day as day,
        pricing_status,
        route_owner,
        coalesce(billed_model, requested_model) as model,
        count(*)::bigint as calls,
        min(started_at) as first_seen,
        max(started_at) as last_seen,
        arg_max(call_id, (started_at, call_id)) as latest_call_id,
        arg_max(unpriced_reason, (started_at, call_id)) as latest_reason
    from calls
    where pricing_status <> 'priced'
    group by all
),

final as (
    select * from drift
    union all by name
    select * from partials
    union all by name
    select * from unpriced
)

select * from final
