-- depends: priced_calls, stg_contract_card
-- Provider-routed calls as an invoice sees them: what the contract says is owed (contract_cost, in the
-- contract's currency), whether the contract charges failed calls, and every attempt's request id (a
-- gateway may invoice an attempt the SDK retried). Matching to invoice lines: ledger/reconcile/provider.py.
with calls as (
    select * from priced_calls where route_owner <> 'openai'
),

attempt_ids as (
    select
        call_id,
        list(request_id order by attempt_number) filter (where request_id is not null) as attempt_request_ids,
        list(request_id order by attempt_number)
            filter (where request_id is not null and coalesce(status_code, 0) not between 200 and 299)
            as failed_attempt_request_ids
    from attempts
    group by call_id
),

final as (
    select
        c.call_id,
        c.route_owner as provider,
        c.started_at,
        c.call_day as day,
        c.route,
        c.requested_model,
        c.reported_model,
        c.billed_model,
        c.status,
        c.error_code,
        c.attempts,
        c.images_returned,
        c.request_id,
        coalesce(a.attempt_request_ids, []) as attempt_request_ids,
        coalesce(a.failed_attempt_request_ids, []) as failed_attempt_request_ids,
        c.contract_id,
        c.contract_cost,
        c.contract_currency,
        c.contract_cost_usd,
        k.charge_failed_calls,
        c.pricing_status
    from calls as c
    left join attempt_ids as a using (call_id)
    left join stg_contract_card as k
        on k.provider = c.route_owner
        and k.requested_model = c.requested_model
        and k.call_day = c.call_day
)

select * from final
