-- depends: recon_ledger_lines, recon_bill_lines
-- Bill vs ledger, side by side, per UTC day × project × line item: one row per key found on either
-- side. The grain follows the bill: where a day's export is not grouped by line item (or project),
-- the ledger is summed to the same grain ('*'). Status and likely cause: ledger/reconcile/openai.py.
with bill as (
    select * from recon_bill_lines
),

ledger as (
    select * from recon_ledger_lines
),

bill_grain as (
    select
        day,
        bool_or(project_id is not null) as by_project,
        bool_or(line_item is not null) as by_line
    from bill
    group by day
),

bill_keyed as (
    select
        day,
        coalesce(project_id, '*') as project,
        line_key,
        string_agg(distinct line_item, ' + ' order by line_item) as line_item,
        any_value(model) as model,
        any_value(token_class) as token_class,
        any_value(tier) as tier,
        sum(amount) as bill_usd,
        -- a quantity only when every row of the key has one in tokens
        case when count(tokens) = count(*) then sum(tokens) end as bill_tokens
    from bill
    group by all
),

ledger_keyed as (
    select
        l.day,
        case when coalesce(g.by_project, true) then l.project else '*' end as project,
        case when coalesce(g.by_line, true) then l.model || '|' || l.token_class || '|' || l.tier else '*' end
            as line_key,
        case when coalesce(g.by_line, true) then l.model else '*' end as model,
        case when coalesce(g.by_line, true) then l.token_class else '*' end as token_class,
        case when coalesce(g.by_line, true) then l.tier else '*' end as tier,
        sum(l.tokens)::bigint as ledger_tokens,
        sum(l.usd) as ledger_usd,
        sum(l.unpriced_calls)::bigint as unpriced_calls,
        max(l.usd_per_1m) as book_usd_per_1m,
        max(l.batch_usd_per_1m) as batch_usd_per_1m,
        bool_and(l.usd_per_1m_min = l.usd_per_1m) as one_rate,
        sum(l.calls)::bigint as ledger_calls,
        sum(l.retried_server_failures)::bigint as retried_server_failures,
        sum(l.retry_tokens)::bigint as retry_tokens,
        sum(l.retry_usd) as retry_usd,
        sum(l.partial_images_received)::bigint as partial_images_received,
        sum(l.partial_images_missing)::bigint as partial_images_missing,
        sum(l.partial_received_usd) as partial_received_usd,
        sum(l.partial_missing_usd) as partial_missing_usd
    from ledger as l
    left join bill_grain as g using (day)
    group by all
),

final as (
    select
        coalesce(b.day, l.day) as day,
        coalesce(b.project, l.project) as project,
        b.line_item,
        coalesce(b.model, l.model) as model,
        coalesce(b.token_class, l.token_class) as token_class,
        coalesce(b.tier, l.tier) as tier,
        coalesce(b.line_key, l.line_key) as line_key,
        b.bill_usd,
        l.ledger_usd,
        coalesce(b.bill_usd, 0) - coalesce(l.ledger_usd, 0) as diff_usd,
        b.bill_tokens,
        l.ledger_tokens,
        l.unpriced_calls,
        l.book_usd_per_1m,
        l.batch_usd_per_1m,
        l.one_rate,
        l.ledger_calls,
        l.retried_server_failures,
        l.retry_tokens,
        l.retry_usd,
        l.partial_images_received,
        l.partial_images_missing,
        l.partial_received_usd,
        l.partial_missing_usd
    from bill_keyed as b
    full outer join ledger_keyed as l
        on b.day = l.day
        and b.project = l.project
        and b.line_key = l.line_key
)

select * from final
