-- Official rates pivoted to one row per model × tier × window segment, one column per token class
-- (USD per 1M tokens; null = OpenAI publishes no rate for that class). A segment starts wherever a
-- rate of the model and tier starts or ends, so inside a segment each class has one rate or none;
-- a call joins the segment holding its UTC day (effective_from inclusive, effective_to exclusive).
with rates as (
    select * from official_rates
),

cuts as (
    select model, tier, effective_from as valid_from from rates
    union
    select model, tier, effective_to from rates where effective_to is not null
),

segments as (
    select
        model,
        tier,
        valid_from,
        lead(valid_from) over (partition by model, tier order by valid_from) as valid_to
    from cuts
),

final as (
    select
        s.model,
        s.tier,
        s.valid_from,
        s.valid_to,
        count(r.model) > 0 as has_rates,
        max(r.usd_per_1m) filter (where r.token_class = 'text_input') as text_input_rate,
        max(r.usd_per_1m) filter (where r.token_class = 'cached_text_input') as cached_text_input_rate,
        max(r.usd_per_1m) filter (where r.token_class = 'image_input') as image_input_rate,
        max(r.usd_per_1m) filter (where r.token_class = 'cached_image_input') as cached_image_input_rate,
        max(r.usd_per_1m) filter (where r.token_class = 'image_output') as image_output_rate,
        max(r.usd_per_1m) filter (where r.token_class = 'text_output') as text_output_rate
    from segments as s
    left join rates as r
        on r.model = s.model
        and r.tier = s.tier
        and s.valid_from >= r.effective_from
        and (r.effective_to is null or s.valid_from < r.effective_to)
    group by all
)

select * from final
