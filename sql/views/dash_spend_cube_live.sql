-- depends: booked_calls
-- store: dash_spend_cube (by day)
-- Spend page: booked_calls (closed months read from their frozen rows, later changes booked as
-- adjustments in the first open month; docs/closing.md) rolled up once into a small cube (UTC day × route owner × model × cost
-- basis × pricing status × feature tag × size × quality), so the page scans the calls a single time
-- and slices the cube. Official-rate spend and provider-contract spend stay in separate columns;
-- unpriced calls are counted, their spend stays null (never $0).
-- By day: a call's rows are booked on its own day, or (an adjustment to a closed month) on a later one.
-- Calls are grouped by their raw tags first (a few distinct values); the feature is read from the
-- JSON once per group, not once per call.
with source as (
    select * from booked_calls
),

by_tags as (
    select
        booking_day as day,
        route_owner,
        billed_model,
        requested_model,
        cost_basis,
        pricing_status,
        tags,
        size,
        quality,
        contract_currency,
        -- adjustment rows carry call_count 0: they move money, not calls
        sum(call_count)::bigint as calls,
        coalesce(sum(call_count) filter (where status = 'error'), 0)::bigint as failed_calls,
        count(*) filter (where pricing_status <> 'priced')::bigint as unpriced_calls,
        coalesce(sum(images_returned), 0)::bigint as images,
        coalesce(sum(images_returned) filter (where pricing_status = 'priced'), 0)::bigint as priced_images,
        sum(billed_cost_usd) filter (where pricing_status = 'priced')::double as spend_usd,
        sum(official_cost_usd) filter (
            where pricing_status = 'priced' and cost_basis = 'official_rates'
        )::double as official_spend_usd,
        sum(contract_cost_usd) filter (
            where pricing_status = 'priced' and cost_basis = 'provider_contract'
        )::double as contract_spend_usd,
        -- in the contract's own currency
        sum(contract_cost) filter (
            where pricing_status = 'priced' and cost_basis = 'provider_contract'
        )::double as contract_amount,
        -- what the provider-routed calls would have cost at OpenAI's list prices
        sum(official_cost_usd) filter (where cost_basis = 'provider_contract')::double as shadow_official_usd
    from source
    group by all
),

final as (
    select
        day,
        route_owner,
        coalesce(billed_model, requested_model, '(unknown)') as model,
        cost_basis,
        pricing_status,
        coalesce(tags ->> 'feature', '(untagged)') as feature,
        coalesce(size, '(unknown)') as size,
        coalesce(quality, '(unknown)') as quality,
        contract_currency,
        sum(calls)::bigint as calls,
        sum(failed_calls)::bigint as failed_calls,
        sum(unpriced_calls)::bigint as unpriced_calls,
        sum(images)::bigint as images,
        sum(priced_images)::bigint as priced_images,
        sum(spend_usd)::double as spend_usd,
        sum(official_spend_usd)::double as official_spend_usd,
        sum(contract_spend_usd)::double as contract_spend_usd,
        sum(contract_amount)::double as contract_amount,
        sum(shadow_official_usd)::double as shadow_official_usd
    from by_tags
    group by all
)

select * from final
