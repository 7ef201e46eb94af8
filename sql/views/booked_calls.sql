-- depends: priced_calls, close_current, close_frozen, close_adjustments
-- Every amount by the UTC day it is booked on (docs/closing.md): the columns of priced_calls, plus
--   booking_day        call_day for live and frozen rows; for adjustments the first day of the first open
--                      month after the call's closed month
--   booked_at          the same as a time: started_at for live and frozen rows, booking_day 00:00 UTC for
--                      adjustments (filter on it too: DuckDB then skips the calls' row groups by time)
--   booking_kind       live (a call of an open month, priced now) | frozen (a call of a closed month, as
--                      frozen at its close) | adjustment (live - booked for a call of a closed month)
--   period_closed      the booking month is closed (its rows are frozen rows, adjustments included)
--   call_count         1 per call; an adjustment counts 1 only for a late call (0 when it re-prices one)
--   adjusts_call_id, original_day, adjustment_reason (late_call | status_change | price_change): adjustments
--   close_id           frozen rows: the close they belong to
-- Sums by booking month: a closed month = exactly what was frozen; an open month = live + adjustments.
with closed as (
    select month from close_current
),

live as (
    select
        *,
        call_day as booking_day,
        started_at as booked_at,
        'live' as booking_kind,
        false as period_closed,
        1 as call_count,
        null::varchar as adjusts_call_id,
        null::date as original_day,
        null::varchar as adjustment_reason,
        null::bigint as close_id
    from priced_calls
    anti join closed as c on c.month = date_trunc('month', call_day)::date
),

frozen as (
    select
        * exclude (booking_day, booking_kind),
        booking_day,
        case when booking_kind = 'frozen' then started_at else timezone('UTC', booking_day::timestamp) end as booked_at,
        booking_kind,
        true as period_closed
    from close_frozen
),

final as (
    select * from live
    union all by name
    select * from frozen
    union all by name
    select * from close_adjustments
)

select * from final
