-- depends: priced_calls, stg_contract_card
-- Failed attempts per cause × route owner: how many attempts failed, in how many calls, how many
-- calls finally failed with that cause, and what the failed attempts cost where that is known.
with priced as (
    select * from priced_calls
),

failed_attempts as (
    select
        a.call_id,
        coalesce(a.retry_reason, 'unclassified') as cause,
        p.route_owner,
        case
            -- official route: whether a failed attempt is billed is not documented (reference §8.1, §12.6)
            when p.route_owner = 'openai' then null
            when k.contract_id is null or k.fx_usd_per_unit is null then null
            when k.per_call_price is not null then
                case when k.charge_failed_calls then k.per_call_price * k.fx_usd_per_unit else 0 end
            -- per-token contract: a failed attempt's tokens are not reported
            when k.per_token then null
            else 0  -- per-image contract: a failed attempt returns no image
        end as attempt_cost_usd
    from attempts as a
    join priced as p on p.call_id = a.call_id
    left join stg_contract_card as k
        on k.provider = p.route_owner
        and k.requested_model = p.requested_model
        and k.call_day = p.call_day
    where a.retry_reason is not null or a.error_type is not null
),

by_attempts as (
    select
        cause,
        route_owner,
        count(*)::bigint as attempts,
        count(distinct call_id)::bigint as calls,
        -- null as soon as one attempt's cost is unknown: a partial sum would read as a total
        case when count(*) = count(attempt_cost_usd) then sum(attempt_cost_usd)::double end
            as failed_attempt_cost_usd
    from failed_attempts
    group by all
),

final_failures as (
    select
        coalesce(retry_reason, 'unclassified') as cause,
        route_owner,
        count(*)::bigint as final_failures
    from priced
    where status = 'error'
    group by all
),

final as (
    select
        coalesce(a.cause, f.cause) as cause,
        coalesce(a.route_owner, f.route_owner) as route_owner,
        coalesce(a.attempts, 0) as attempts,
        coalesce(a.calls, 0) as calls,
        coalesce(f.final_failures, 0) as final_failures,
        a.failed_attempt_cost_usd
    from by_attempts as a
    full outer join final_failures as f
        on f.cause = a.cause
        and f.route_owner = a.route_owner
)

select * from final
