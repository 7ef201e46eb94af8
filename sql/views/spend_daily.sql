-- depends: priced_calls
-- Spend per UTC day × route owner × billed model × cost basis. Official and contract money stay in
-- separate columns; on 'provider_contract' rows official_cost_usd is the shadow price (what the same
-- tokens would cost at OpenAI), never money owed. Sums skip unpriced calls: unpriced_calls counts them.
with priced as (
    select * from priced_calls
),

final as (
    select
        call_day as day,
        route_owner,
        billed_model,
        cost_basis,
        count(*)::bigint as calls,
        count(*) filter (where status = 'error')::bigint as failed_calls,
        coalesce(sum(images_returned), 0)::bigint as images,
        sum(official_cost_usd)::double as official_cost_usd,
        sum(contract_cost_usd)::double as contract_cost_usd,
        sum(billed_cost_usd)::double as billed_cost_usd,
        count(*) filter (where pricing_status <> 'priced')::bigint as unpriced_calls
    from priced
    group by all
)

select * from final
