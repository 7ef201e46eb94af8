-- depends: close_current
-- The frozen rows that count: those of each month's current close. Rows of a close that was later
-- reopened stay in frozen_calls (the audit trail) but are superseded and not read here.
with frozen as (
    select * from frozen_calls
),

final as (
    select *
    from frozen
    where close_id in (select close_id from close_current)
)

select * from final
