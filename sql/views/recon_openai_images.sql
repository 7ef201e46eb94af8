-- depends: stg_calls
-- Image and request counts: OpenAI's Usage API for images (openai_image_usage, reference §10.1) vs the
-- ledger's OpenAI-routed Images API calls, per UTC day × project × model × source. Sizes and users are
-- summed over (gpt-image-2's custom sizes do not fit the API's size enum). Responses image-tool calls
-- are left out: whether the images usage API counts them is not documented.
-- Ledger requests: calls that returned images, plus retried attempts that failed on the server's side
-- are counted separately (retried_server_failures) as the likely cause of extra billed requests.
with usage as (
    select
        cast(timezone('UTC', start_time) as date) as day,
        coalesce(project_id, '*') as project,
        coalesce(regexp_replace(model, '-\d{4}-\d{2}-\d{2}$', ''), '*') as model,
        coalesce(source, '*') as source,
        images,
        num_model_requests
    from openai_image_usage
),

usage_grain as (
    select
        day,
        bool_or(project <> '*') as by_project,
        bool_or(model <> '*') as by_model,
        bool_or(source <> '*') as by_source
    from usage
    group by day
),

usage_keyed as (
    select day, project, model, source, sum(images)::bigint as bill_images,
        sum(num_model_requests)::bigint as bill_requests
    from usage
    group by all
),

server_failures as (
    select call_id, count(*) as attempts
    from attempts
    where status_code >= 500 or retry_reason in ('timeout', 'provider_5xx')
    group by call_id
),

calls as (
    select
        p.call_day as day,
        coalesce(
            json_extract_string(p.tags, '$.project'), getvariable('recon_default_project'), 'default'
        ) as project,
        regexp_replace(p.billed_model, '-\d{4}-\d{2}-\d{2}$', '') as model,
        case p.route when 'images.generate' then 'image.generation' when 'images.edit' then 'image.edit' end
            as source,
        p.status,
        coalesce(p.images_returned, 0) as images,
        case when p.status = 'ok' then coalesce(f.attempts, 0) else 0 end as retried_server_failures
    from stg_calls as p
    left join server_failures as f using (call_id)
    where p.route_owner = 'openai' and p.route in ('images.generate', 'images.edit')
),

ledger_keyed as (
    select
        c.day,
        case when coalesce(g.by_project, true) then c.project else '*' end as project,
        case when coalesce(g.by_model, true) then c.model else '*' end as model,
        case when coalesce(g.by_source, true) then c.source else '*' end as source,
        sum(c.images)::bigint as ledger_images,
        count(*) filter (where c.images > 0)::bigint as ledger_requests,
        sum(c.retried_server_failures)::bigint as retried_server_failures,
        -- images a retried attempt would have produced: the call's own count per failed attempt
        sum(c.retried_server_failures * c.images)::bigint as retry_images
    from calls as c
    left join usage_grain as g using (day)
    group by all
),

final as (
    select
        coalesce(u.day, l.day) as day,
        coalesce(u.project, l.project) as project,
        coalesce(u.model, l.model) as model,
        coalesce(u.source, l.source) as source,
        u.bill_images,
        l.ledger_images,
        u.bill_requests,
        l.ledger_requests,
        coalesce(u.bill_images, 0) - coalesce(l.ledger_images, 0) as diff_images,
        coalesce(u.bill_requests, 0) - coalesce(l.ledger_requests, 0) as diff_requests,
        l.retried_server_failures,
        l.retry_images
    from usage_keyed as u
    full outer join ledger_keyed as l
        on u.day = l.day
        and u.project = l.project
        and u.model = l.model
        and u.source = l.source
)

select * from final
