-- One row per call with the derived keys pricing needs. No prices here.
with source as (
    select * from calls
),

final as (
    select
        -- a call with no HTTP attempt (blocked by a budget guard, or refused by the SDK before sending)
        -- cost nothing: its usage is a known zero, not missing
        * replace (case when attempt_count = 0 then 'not_sent' else usage_source end as usage_source),
        -- rates apply as of the call's UTC day; epoch arithmetic is UTC whatever the session time
        -- zone, and ~8x faster than a time-zone-aware cast over millions of rows
        date '1970-01-01' + cast(epoch_us(started_at) // 86400000000 as integer) as call_day,
        -- the model that answered, when the server says so; else the one requested
        coalesce(reported_model, requested_model) as billed_model,
        coalesce(size_effective, size_requested) as size,
        coalesce(quality_effective, quality_requested) as quality,
        -- input counts include their cached part (001_facts.sql); Images API calls have null cached
        -- columns, so all their input is uncached (reference §5.2)
        text_input_tokens - coalesce(cached_text_input_tokens, 0) as uncached_text_input_tokens,
        image_input_tokens - coalesce(cached_image_input_tokens, 0) as uncached_image_input_tokens,
        mainline_input_tokens - coalesce(mainline_cached_input_tokens, 0) as mainline_uncached_input_tokens
    from source
)

select * from final
