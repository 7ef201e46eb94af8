-- depends: stg_calls
-- Per UTC month that was ever closed (or is being closed): how many calls it has and a fingerprint of everything
-- priced_calls reads to price them: the official rates, contract terms and FX rates that can apply to a
-- day of the month (windows clipped to the month, so closing a window after it changes nothing) and the
-- SQL of the pricing views. Equal fingerprint and count = its calls price exactly as before.
-- Keep the list of pricing views in step with sql/views/priced_calls_live.sql and its dependencies.
with months as (
    select
        month,
        (month + interval 1 month)::date as month_end
    from (select distinct month from period_events)
),

call_counts as (
    select
        m.month,
        count(*)::bigint as calls
    from months as m
    join stg_calls as c on date_trunc('month', c.call_day)::date = m.month
    group by m.month
),

code as (
    select string_agg(sql, ';' order by view_name) as pricing_sql
    from duckdb_views()
    where database_name = current_database()
        and schema_name = 'main'
        and view_name in ('stg_calls', 'stg_official_rate_card', 'stg_contract_card', 'priced_calls_live')
),

-- one line per book row that can price a day of the month, windows clipped to the month
book_lines as (
    select
        m.month,
        concat_ws('|', 'rate', r.model, r.token_class, r.tier, r.usd_per_1m,
            greatest(r.effective_from, m.month), least(coalesce(r.effective_to, m.month_end), m.month_end)) as line
    from months as m
    join official_rates as r
        on r.effective_from < m.month_end
        and (r.effective_to is null or r.effective_to > m.month)
    union all
    select
        m.month,
        concat_ws('|', 'contract', k.provider, k.contract_id, k.model_pattern, k.unit, k.token_class, k.price,
            k.currency, k.charge_failed_calls,
            greatest(k.effective_from, m.month), least(coalesce(k.effective_to, m.month_end), m.month_end))
    from months as m
    join provider_contracts as k
        on k.effective_from < m.month_end
        and (k.effective_to is null or k.effective_to > m.month)
    union all
    -- a day uses the latest FX rate on or before it: every rate before the month's end may apply
    select
        m.month,
        concat_ws('|', 'fx', f.currency, f.day, f.usd_per_unit)
    from months as m
    join fx_rates as f on f.day < m.month_end
),

books as (
    select
        month,
        string_agg(line, ';' order by line) as lines
    from book_lines
    group by month
),

final as (
    select
        m.month,
        coalesce(n.calls, 0) as calls,
        md5(concat_ws('#', code.pricing_sql, b.lines)) as pricing_inputs
    from months as m
    cross join code
    left join call_counts as n on n.month = m.month
    left join books as b on b.month = m.month
)

select * from final
