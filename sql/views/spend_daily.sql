-- depends: booked_calls
-- Spend per booking day × route owner × billed model × cost basis (booked_calls, docs/closing.md): a closed
-- month's days read its frozen rows; an open month's days its calls priced now, plus on its first day the
-- adjustments (late calls, re-pricing) to the closed months before it. Official and contract money stay in
-- separate columns; on 'provider_contract' rows official_cost_usd is the shadow price (what the same
-- tokens would cost at OpenAI), never money owed. Sums skip unpriced calls: unpriced_calls counts them.
with booked as (
    select * from booked_calls
),

final as (
    select
        booking_day as day,
        route_owner,
        billed_model,
        cost_basis,
        -- a late call counts on the day it is booked; a re-pricing adjustment is no extra call
        coalesce(sum(call_count), 0)::bigint as calls,
        coalesce(sum(call_count) filter (where status = 'error'), 0)::bigint as failed_calls,
        coalesce(sum(images_returned), 0)::bigint as images,
        sum(official_cost_usd)::double as official_cost_usd,
        sum(contract_cost_usd)::double as contract_cost_usd,
        sum(billed_cost_usd)::double as billed_cost_usd,
        count(*) filter (where pricing_status <> 'priced')::bigint as unpriced_calls
    from booked
    group by all
)

select * from final
