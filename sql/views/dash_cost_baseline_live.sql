-- depends: priced_calls
-- store: dash_cost_baseline
-- Anomalies page: the typical (median) cost per image of each route owner × model × size × quality,
-- over the ledger's whole history; a call costing several times its group's median is an outlier.
-- A stable baseline (not the chosen period's) that is also cheap to read: an aggregate store, rebuilt
-- at each refresh.
with per_image as (
    select
        route_owner,
        coalesce(billed_model, requested_model) as model,
        size,
        quality,
        billed_cost_usd / images_returned as cost_per_image
    from priced_calls
    where status = 'ok' and pricing_status = 'priced' and images_returned > 0
),

final as (
    select
        route_owner,
        model,
        size,
        quality,
        median(cost_per_image) as median_cost,
        count(*)::bigint as calls
    from per_image
    group by all
)

select * from final
