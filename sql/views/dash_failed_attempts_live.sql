-- store: dash_failed_attempts
-- Retry causes page: every failed HTTP attempt (the SDK's own retries included) with its call's
-- route owner and UTC day. A successful attempt has no retry_reason and no error.
with failed as (
    select *
    from attempts
    where retry_reason is not null or error_type is not null or error_code is not null
),

joined as (
    select
        cast(timezone('UTC', coalesce(failed.started_at, calls.started_at)) as date) as day,
        coalesce(failed.started_at, calls.started_at) as started_at,
        failed.call_id,
        failed.attempt_number,
        calls.route,
        calls.route_owner,
        coalesce(failed.retry_reason, 'unclassified') as cause,
        failed.status_code,
        failed.error_type,
        failed.error_code,
        failed.duration_s,
        failed.retry_after_s,
        calls.status as call_status,
        -- a later attempt followed this one (the SDK retried)
        failed.attempt_number < calls.attempt_count - 1 as retried
    from failed
    inner join calls on calls.call_id = failed.call_id
),

final as (
    select * from joined
)

select * from final
