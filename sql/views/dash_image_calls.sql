-- depends: priced_calls
-- Anomalies page: the facts of each call that the anomaly checks compare. Read from priced_calls
-- (one row per call, served from its store on a large ledger) rather than the raw facts, so the
-- checks scan one narrow stored table.
with source as (
    select * from priced_calls
),

final as (
    select
        call_id,
        started_at,
        call_day as day,
        route,
        route_owner,
        requested_model,
        reported_model,
        size,
        quality,
        n,
        stream,
        partial_images_requested,
        partial_images_received,
        images_returned,
        image_output_tokens,
        duration_s,
        status
    from source
)

select * from final
