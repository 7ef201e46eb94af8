-- depends: stg_calls
-- The provider contract in force for each provider × requested model × UTC day that has calls, one
-- column per priced term, with the FX rate of that day. Built from the distinct keys (a few per
-- day), so the glob match and the FX lookup never run per call.
with keys as (
    select distinct route_owner as provider, requested_model, call_day
    from stg_calls
    where route_owner <> 'openai'
),

matches as (
    select
        k.provider,
        k.requested_model,
        k.call_day,
        c.*,
        -- the most specific (longest) matching pattern wins; all its terms apply together
        rank() over (
            partition by k.provider, k.requested_model, k.call_day
            order by length(c.model_pattern) desc, c.model_pattern
        ) as specificity_rank
    from keys as k
    join provider_contracts as c
        on c.provider = k.provider
        and k.requested_model glob c.model_pattern
        and k.call_day >= c.effective_from
        and (c.effective_to is null or k.call_day < c.effective_to)
),

terms as (
    -- the loader guarantees one contract_id and currency per provider × pattern on a day
    select
        provider,
        requested_model,
        call_day,
        min(contract_id) as contract_id,
        min(currency) as currency,
        sum(price) filter (where unit = 'per_call') as per_call_price,
        bool_or(charge_failed_calls) filter (where unit = 'per_call') as charge_failed_calls,
        sum(price) filter (where unit = 'per_image') as per_image_price,
        count(*) filter (where unit = 'per_1m_tokens') > 0 as per_token,
        sum(price) filter (where token_class = 'text_input') as text_input_price,
        sum(price) filter (where token_class = 'cached_text_input') as cached_text_input_price,
        sum(price) filter (where token_class = 'image_input') as image_input_price,
        sum(price) filter (where token_class = 'cached_image_input') as cached_image_input_price,
        sum(price) filter (where token_class = 'image_output') as image_output_price,
        sum(price) filter (where token_class = 'text_output') as text_output_price
    from matches
    where specificity_rank = 1
    group by provider, requested_model, call_day
),

final as (
    select
        t.*,
        -- the latest rate on or before the call's day; USD needs none
        case when t.currency = 'USD' then 1.0 else fx.usd_per_unit end as fx_usd_per_unit
    from terms as t
    asof left join fx_rates as fx
        on fx.currency = t.currency
        and t.call_day >= fx.day
)

select * from final
