-- depends: close_current, close_month_inputs
-- The closed months that may have adjustments, compared with the latest current close that froze them
-- (their own close, or a later close that froze adjustments to them):
--   reprice = true   their pricing inputs changed (or were never recorded): every call is re-priced and
--                    compared with what is booked for it;
--   reprice = false  same inputs, more calls: only the late calls (nothing booked for them) are priced.
-- A closed month that is in neither state has no adjustments: live = booked for each of its calls, and
-- booked_calls does not price it at all.
with closed as (
    select * from close_current
),

known as (
    select *
    from frozen_months
    where close_id in (select close_id from closed)
    qualify row_number() over (partition by month order by close_id desc) = 1
),

final as (
    select
        c.month,
        c.adjust_into,
        k.month is null or k.pricing_inputs is distinct from i.pricing_inputs as reprice
    from closed as c
    left join known as k on k.month = c.month
    left join close_month_inputs as i on i.month = c.month
    where k.month is null
        or k.pricing_inputs is distinct from i.pricing_inputs
        or k.calls is distinct from coalesce(i.calls, 0)
)

select * from final
