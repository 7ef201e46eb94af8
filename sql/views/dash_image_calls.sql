-- depends: stg_calls
-- Anomalies page: the facts of each call that the anomaly checks compare. No prices are needed, so
-- these checks skip the pricing joins (stg_calls is a projection of the calls table).
with source as (
    select * from stg_calls
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
