-- depends: stg_calls, priced_calls, close_stale, close_frozen
-- Adjustments (docs/closing.md): for each call of a closed month whose live pricing (priced_calls now)
-- differs from what is booked for it (its frozen row plus the adjustments later closes froze), one row,
-- booked on the first day of the first open month after the call's month. A closed month is never
-- rewritten. Only the months in close_stale are priced (all their calls, or only the late ones): in the
-- other closed months nothing can have changed.
--
-- Additive columns hold live - booked; the other columns are the live call's values:
-- * a late call (nothing booked for it yet) adjusts by its full live amounts, tokens and counts too;
-- * a known call's facts never change (ledger.facts skips known call_ids): its tokens and counts adjust by
--   0, only the money columns and charged_attempts move;
-- * money: coalesce(live - booked, live, -booked). A cost that became null (priced -> unpriced after a
--   book change) adjusts by -booked and the row carries the live pricing_status, so it is flagged; a
--   cost that became known adjusts by its full live amount;
-- * contract_cost is in the contract's currency: when the live contract is in another currency than the
--   call's first booked row, it is null (contract_cost_usd carries the change).
with stale as (
    select * from close_stale
),

closed as (
    select month, adjust_into from stale where reprice
),

-- months whose pricing inputs are unchanged but which have more calls than were booked
grown as (
    select month, adjust_into from stale where not reprice
),

-- their late calls: the calls nothing is booked for yet
late_ids as (
    select
        s.call_id,
        g.adjust_into
    from stg_calls as s
    join grown as g on g.month = date_trunc('month', s.call_day)::date
    anti join (
        select f.call_id
        from close_frozen as f
        join grown as g on g.month = date_trunc('month', f.call_day)::date
    ) as b on b.call_id = s.call_id
),

-- live pricing of the calls to check: all calls of re-priced months, the late calls of grown ones
live as (
    select
        p.*,
        c.adjust_into
    from priced_calls as p
    join closed as c on c.month = date_trunc('month', p.call_day)::date
    union all
    select
        p.*,
        l.adjust_into
    from priced_calls as p
    join late_ids as l on l.call_id = p.call_id
),

-- each call's frozen row (at most one: the current close of the call's own month) ...
own as (
    select f.*
    from close_frozen as f
    join closed as c on c.month = date_trunc('month', f.call_day)::date
    where f.booking_kind = 'frozen'
),

-- ... and the adjustments to it frozen by later closes (few: one per close that saw a change)
later as (
    select
        call_id,
        sum(image_official_cost_usd) as image_official_cost_usd,
        sum(mainline_official_cost_usd) as mainline_official_cost_usd,
        sum(official_cost_usd) as official_cost_usd,
        sum(contract_cost) as contract_cost,
        sum(charged_attempts) as charged_attempts,
        sum(contract_cost_usd) as contract_cost_usd,
        sum(billed_cost_usd) as billed_cost_usd,
        arg_min(contract_currency, booking_day) as first_currency,
        arg_max(pricing_status, booking_day) as pricing_status,
        arg_max(official_status, booking_day) as official_status
    from close_frozen
    where booking_kind = 'adjustment'
        and date_trunc('month', call_day)::date in (select month from closed)
    group by call_id
),

-- what is booked per call so far (a sum is null only when both parts are); statuses of the latest row
booked as (
    select
        coalesce(o.call_id, a.call_id) as call_id,
        coalesce(o.image_official_cost_usd + a.image_official_cost_usd, o.image_official_cost_usd,
            a.image_official_cost_usd) as image_official_cost_usd,
        coalesce(o.mainline_official_cost_usd + a.mainline_official_cost_usd, o.mainline_official_cost_usd,
            a.mainline_official_cost_usd) as mainline_official_cost_usd,
        coalesce(o.official_cost_usd + a.official_cost_usd, o.official_cost_usd, a.official_cost_usd)
            as official_cost_usd,
        coalesce(o.contract_cost + a.contract_cost, o.contract_cost, a.contract_cost) as contract_cost,
        coalesce(o.charged_attempts + a.charged_attempts, o.charged_attempts, a.charged_attempts)
            as charged_attempts,
        coalesce(o.contract_cost_usd + a.contract_cost_usd, o.contract_cost_usd, a.contract_cost_usd)
            as contract_cost_usd,
        coalesce(o.billed_cost_usd + a.billed_cost_usd, o.billed_cost_usd, a.billed_cost_usd) as billed_cost_usd,
        coalesce(o.contract_currency, a.first_currency) as contract_currency,
        coalesce(a.pricing_status, o.pricing_status) as pricing_status,
        coalesce(a.official_status, o.official_status) as official_status
    from own as o
    full outer join later as a on a.call_id = o.call_id
),

compared as (
    select
        l.*,
        b.call_id is null as is_late,
        l.pricing_status is distinct from b.pricing_status or l.official_status is distinct from b.official_status
            as status_changed,
        l.contract_currency <> b.contract_currency as currency_changed,
        b.image_official_cost_usd as booked_image_official_cost_usd,
        b.mainline_official_cost_usd as booked_mainline_official_cost_usd,
        b.official_cost_usd as booked_official_cost_usd,
        b.contract_cost as booked_contract_cost,
        b.charged_attempts as booked_charged_attempts,
        b.contract_cost_usd as booked_contract_cost_usd,
        b.billed_cost_usd as booked_billed_cost_usd
    from live as l
    left join booked as b on b.call_id = l.call_id
),

differences as (
    select
        * replace (
            case when is_late then n else 0 end as n,
            case when is_late then partial_images_requested else 0 end as partial_images_requested,
            case when is_late then partial_images_received else 0 end as partial_images_received,
            case when is_late then input_image_count else 0 end as input_image_count,
            case when is_late then images_returned else 0 end as images_returned,
            case when is_late then text_input_tokens else 0 end as text_input_tokens,
            case when is_late then image_input_tokens else 0 end as image_input_tokens,
            case when is_late then cached_text_input_tokens else 0 end as cached_text_input_tokens,
            case when is_late then cached_image_input_tokens else 0 end as cached_image_input_tokens,
            case when is_late then image_output_tokens else 0 end as image_output_tokens,
            case when is_late then text_output_tokens else 0 end as text_output_tokens,
            case when is_late then mainline_input_tokens else 0 end as mainline_input_tokens,
            case when is_late then mainline_cached_input_tokens else 0 end as mainline_cached_input_tokens,
            case when is_late then mainline_output_tokens else 0 end as mainline_output_tokens,
            case when is_late then attempts else 0 end as attempts,
            coalesce(image_official_cost_usd - booked_image_official_cost_usd, image_official_cost_usd,
                -booked_image_official_cost_usd) as image_official_cost_usd,
            coalesce(mainline_official_cost_usd - booked_mainline_official_cost_usd, mainline_official_cost_usd,
                -booked_mainline_official_cost_usd) as mainline_official_cost_usd,
            coalesce(official_cost_usd - booked_official_cost_usd, official_cost_usd, -booked_official_cost_usd)
                as official_cost_usd,
            case when currency_changed then null
                else coalesce(contract_cost - booked_contract_cost, contract_cost, -booked_contract_cost)
            end as contract_cost,
            coalesce(charged_attempts - booked_charged_attempts, charged_attempts, -booked_charged_attempts)::integer
                as charged_attempts,
            coalesce(contract_cost_usd - booked_contract_cost_usd, contract_cost_usd, -booked_contract_cost_usd)
                as contract_cost_usd,
            coalesce(billed_cost_usd - booked_billed_cost_usd, billed_cost_usd, -booked_billed_cost_usd)
                as billed_cost_usd
        )
    from compared
),

final as (
    select
        * exclude (
            adjust_into, is_late, status_changed, currency_changed, booked_image_official_cost_usd,
            booked_mainline_official_cost_usd, booked_official_cost_usd, booked_contract_cost,
            booked_charged_attempts, booked_contract_cost_usd, booked_billed_cost_usd
        ),
        adjust_into as booking_day,
        timezone('UTC', adjust_into::timestamp) as booked_at,
        'adjustment' as booking_kind,
        false as period_closed,
        case when is_late then 1 else 0 end as call_count,
        call_id as adjusts_call_id,
        call_day as original_day,
        case when is_late then 'late_call' when status_changed then 'status_change' else 'price_change' end
            as adjustment_reason,
        null::bigint as close_id
    from differences
    -- money differing by less than a nano-dollar is float noise, not a change
    where is_late
        or status_changed
        or charged_attempts <> 0
        or abs(image_official_cost_usd) >= 1e-9
        or abs(mainline_official_cost_usd) >= 1e-9
        or abs(official_cost_usd) >= 1e-9
        or abs(contract_cost) >= 1e-9
        or abs(contract_cost_usd) >= 1e-9
        or abs(billed_cost_usd) >= 1e-9
)

select * from final
