-- OpenAI's Costs API rows (openai_costs) with their line items mapped to model × token class × tier
-- through recon_line_item_map (ledger/books/line_items.toml; first matching rule wins).
-- line_key is what the comparison joins on: 'model|token_class|tier' for a mapped line item, '*' when
-- the export was not grouped by line item, 'unmapped:<line item>' for a string no rule matches.
with costs as (
    select
        *,
        cast(timezone('UTC', start_time) as date) as day,
        row_number() over () as row_id
    from openai_costs
),

matched as (
    select
        c.*,
        m.position,
        coalesce(m.model, regexp_extract(c.line_item, m.regex, 1)) as mapped_model,
        m.token_class,
        m.tier
    from costs as c
    left join recon_line_item_map as m
        on c.line_item is not null
        and regexp_full_match(c.line_item, m.regex)
    qualify row_number() over (partition by c.row_id order by m.position nulls last) = 1
),

final as (
    select
        day,
        project_id,
        line_item,
        api_key_id,
        amount,
        currency,
        case quantity_unit
            when 'tokens' then quantity
            when '1000_tokens' then quantity * 1000
        end as tokens,
        regexp_replace(mapped_model, '-\d{4}-\d{2}-\d{2}$', '') as model,
        token_class,
        tier,
        case
            when line_item is null then '*'
            when token_class is null then 'unmapped:' || line_item
            else regexp_replace(mapped_model, '-\d{4}-\d{2}-\d{2}$', '') || '|' || token_class || '|' || tier
        end as line_key
    from matched
)

select * from final
