-- The months that are closed now (the latest period event of the month is 'closed'), with the close whose
-- frozen rows they read, and adjust_into: the first day of the first month after it that is not closed
-- (normally the current month). Late calls and re-pricing of the month are booked there (docs/closing.md).
with events as (
    select * from period_events
),

latest as (
    select *
    from events
    qualify row_number() over (partition by month order by event_id desc) = 1
),

closed as (
    select
        month,
        close_id,
        event_at as closed_at,
        by_user as closed_by,
        price_book_version
    from latest
    where event = 'closed'
),

-- a run of consecutive closed months ends where the next month is not closed: that next month is open
run_ends as (
    select (c.month + interval 1 month)::date as next_open
    from closed as c
    where (c.month + interval 1 month)::date not in (select month from closed)
),

final as (
    select
        c.*,
        (select min(e.next_open) from run_ends as e where e.next_open > c.month) as adjust_into
    from closed as c
)

select * from final
