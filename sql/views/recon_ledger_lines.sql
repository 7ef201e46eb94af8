-- depends: stg_calls, stg_official_rate_card
-- The ledger's side of the OpenAI bill: OpenAI-routed calls' tokens and official-rate cost per UTC day
-- × project × model × token class × tier, i.e. the grain of a Costs API line item (reference §10.2),
-- with the evidence the cause analysis needs (retried attempts, partial images). Priced here, like
-- priced_calls does (same stg_calls facts, same stg_official_rate_card), but per token class and summed
-- before pricing: one rate per model × tier × day.
--
-- Project: the call's tag `project` (imagecost.tag.project) when present, else the session variable
-- `recon_default_project` (imagecost reconcile --project), else 'default'.
-- Model: the snapshot suffix (-YYYY-MM-DD) is dropped, so a bill naming the snapshot and a ledger
-- naming the alias (or the reverse) meet on one row.
with calls as (
    select
        p.*,
        coalesce(
            json_extract_string(p.tags, '$.project'), getvariable('recon_default_project'), 'default'
        ) as project
    from stg_calls as p
    where p.route_owner = 'openai'
),

server_failures as (
    -- attempts that failed on the server's side (5xx) or timed out: the server may have finished the
    -- work and billed it, and the SDK sends no idempotency key (reference §9, §12 item 12)
    select call_id, count(*) as attempts
    from attempts
    where status_code >= 500 or retry_reason in ('timeout', 'provider_5xx')
    group by call_id
),

evidence as (
    select
        c.call_day,
        c.project,
        c.billed_model,
        c.mainline_model,
        c.service_tier,
        c.text_input_tokens - coalesce(c.cached_text_input_tokens, 0) as text_input,
        c.cached_text_input_tokens as cached_text_input,
        c.image_input_tokens - coalesce(c.cached_image_input_tokens, 0) as image_input,
        c.cached_image_input_tokens as cached_image_input,
        c.image_output_tokens as image_output,
        c.text_output_tokens as text_output,
        c.mainline_input_tokens - coalesce(c.mainline_cached_input_tokens, 0) as mainline_input,
        c.mainline_cached_input_tokens as mainline_cached_input,
        c.mainline_output_tokens as mainline_output,
        case when c.status = 'ok' then coalesce(f.attempts, 0) else 0 end as failures,
        coalesce(c.partial_images_received, 0) as partials_received,
        greatest(coalesce(c.partial_images_requested, 0) - coalesce(c.partial_images_received, 0), 0)
            as partials_missing
    from calls as c
    left join server_failures as f using (call_id)
),

token_lines as (
    -- one row per call × token class (input classes are the uncached part; cached ones have their own
    -- line); the partial-image evidence rides on the image_output line only
    select call_day, project, billed_model as model, 'text_input' as token_class, service_tier,
        text_input as tokens, failures, 0 as partials_received, 0 as partials_missing from evidence
    union all
    select call_day, project, billed_model, 'cached_text_input', service_tier, cached_text_input, failures, 0, 0
    from evidence
    union all
    select call_day, project, billed_model, 'image_input', service_tier, image_input, failures, 0, 0 from evidence
    union all
    select call_day, project, billed_model, 'cached_image_input', service_tier, cached_image_input, failures, 0, 0
    from evidence
    union all
    select call_day, project, billed_model, 'image_output', service_tier, image_output, failures,
        partials_received, partials_missing from evidence
    union all
    select call_day, project, billed_model, 'text_output', service_tier, text_output, failures, 0, 0 from evidence
    union all
    select call_day, project, mainline_model, 'text_input', service_tier, mainline_input, failures, 0, 0
    from evidence
    union all
    select call_day, project, mainline_model, 'cached_text_input', service_tier, mainline_cached_input, failures, 0, 0
    from evidence
    union all
    select call_day, project, mainline_model, 'text_output', service_tier, mainline_output, failures, 0, 0
    from evidence
),

grouped as (
    -- one rate per model × tier × day, so sum first and price the sums
    select
        call_day,
        project,
        model,
        token_class,
        service_tier,
        sum(tokens) as tokens,
        count(*) as calls,
        sum(failures) as failures,
        sum(failures * tokens) as retry_tokens,
        sum(partials_received) as partials_received,
        sum(partials_missing) as partials_missing
    from token_lines
    where model is not null and coalesce(tokens, 0) <> 0
    group by all
),

rated as (
    select
        g.*,
        case g.token_class
            when 'text_input' then r.text_input_rate
            when 'cached_text_input' then r.cached_text_input_rate
            when 'image_input' then r.image_input_rate
            when 'cached_image_input' then r.cached_image_input_rate
            when 'image_output' then r.image_output_rate
            when 'text_output' then r.text_output_rate
        end as usd_per_1m,
        case g.token_class
            when 'text_input' then b.text_input_rate
            when 'cached_text_input' then b.cached_text_input_rate
            when 'image_input' then b.image_input_rate
            when 'cached_image_input' then b.cached_image_input_rate
            when 'image_output' then b.image_output_rate
            when 'text_output' then b.text_output_rate
        end as batch_usd_per_1m
    from grouped as g
    left join stg_official_rate_card as r
        on r.model = g.model
        and r.tier = g.service_tier
        and g.call_day >= r.valid_from
        and (r.valid_to is null or g.call_day < r.valid_to)
    left join stg_official_rate_card as b
        on b.model = g.model
        and b.tier = 'batch'
        and g.call_day >= b.valid_from
        and (b.valid_to is null or g.call_day < b.valid_to)
),

final as (
    select
        call_day as day,
        project,
        regexp_replace(model, '-\d{4}-\d{2}-\d{2}$', '') as model,
        token_class,
        service_tier as tier,
        sum(tokens)::bigint as tokens,
        sum(tokens * usd_per_1m / 1e6) as usd,
        coalesce(sum(calls) filter (where usd_per_1m is null), 0)::bigint as unpriced_calls,
        min(usd_per_1m) as usd_per_1m_min,
        max(usd_per_1m) as usd_per_1m,
        max(batch_usd_per_1m) as batch_usd_per_1m,
        sum(calls)::bigint as calls,
        sum(failures)::bigint as retried_server_failures,
        sum(retry_tokens)::bigint as retry_tokens,
        sum(retry_tokens * usd_per_1m / 1e6) as retry_usd,
        -- partial images (reference §3.2: +100 image output tokens each); only on the image_output line
        sum(partials_received)::bigint as partial_images_received,
        sum(partials_missing)::bigint as partial_images_missing,
        sum(100 * partials_received * usd_per_1m / 1e6) as partial_received_usd,
        sum(100 * partials_missing * usd_per_1m / 1e6) as partial_missing_usd
    from rated
    group by all
)

select * from final
