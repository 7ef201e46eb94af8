-- depends: stg_calls, stg_official_rate_card, stg_contract_card
-- store: priced_calls
-- The pricing itself: one row per call with its official (OpenAI list price) cost, its provider-contract
-- cost and the billed figure, computed now from the facts and the price books. Read it through
-- priced_calls, which serves the same rows from its store while that is up to date (ledger/stores.py).
-- An unknown model, a missing rate, missing usage, contract or FX rate give a null cost and a
-- pricing_status other than 'priced', never $0 (ARCHITECTURE.md; reference §12.13).
with calls as (
    select * from stg_calls
),

joined as (
    select
        c.*,
        ir.has_rates as image_has_rates,
        ir.text_input_rate,
        ir.cached_text_input_rate,
        ir.image_input_rate,
        ir.cached_image_input_rate,
        ir.image_output_rate,
        ir.text_output_rate,
        mr.has_rates as mainline_has_rates,
        mr.text_input_rate as mainline_input_rate,
        mr.cached_text_input_rate as mainline_cached_input_rate,
        mr.text_output_rate as mainline_output_rate,
        k.contract_id,
        k.currency as contract_currency,
        k.per_call_price,
        k.charge_failed_calls,
        k.per_image_price,
        k.per_token,
        k.text_input_price,
        k.cached_text_input_price,
        k.image_input_price,
        k.cached_image_input_price,
        k.image_output_price,
        k.text_output_price,
        k.fx_usd_per_unit
    from calls as c
    -- the image model (Images API model, Responses tools[].model) at the call's tier and UTC day
    left join stg_official_rate_card as ir
        on ir.model = c.billed_model
        and ir.tier = c.service_tier
        and c.call_day >= ir.valid_from
        and (ir.valid_to is null or c.call_day < ir.valid_to)
    -- Responses: the mainline (top-level) model's own usage, at its text rates (reference §2.3)
    left join stg_official_rate_card as mr
        on mr.model = c.mainline_model
        and mr.tier = c.service_tier
        and c.call_day >= mr.valid_from
        and (mr.valid_to is null or c.call_day < mr.valid_to)
    left join stg_contract_card as k
        on k.provider = c.route_owner
        and k.requested_model = c.requested_model
        and k.call_day = c.call_day
),

components as (
    -- USD per component; a component with tokens but no rate is null (unpriced), one without tokens
    -- costs 0. Reported usage is trusted as is: partial images are already in image_output_tokens,
    -- never add 100 × partials on top (reference §3.2, §12.3).
    select
        *,
        case when coalesce(uncached_text_input_tokens, 0) = 0 then 0
            else uncached_text_input_tokens * text_input_rate / 1e6 end as text_input_usd,
        case when coalesce(cached_text_input_tokens, 0) = 0 then 0
            else cached_text_input_tokens * cached_text_input_rate / 1e6 end as cached_text_input_usd,
        case when coalesce(uncached_image_input_tokens, 0) = 0 then 0
            else uncached_image_input_tokens * image_input_rate / 1e6 end as image_input_usd,
        case when coalesce(cached_image_input_tokens, 0) = 0 then 0
            else cached_image_input_tokens * cached_image_input_rate / 1e6 end as cached_image_input_usd,
        case when coalesce(image_output_tokens, 0) = 0 then 0
            else image_output_tokens * image_output_rate / 1e6 end as image_output_usd,
        case when coalesce(text_output_tokens, 0) = 0 then 0
            else text_output_tokens * text_output_rate / 1e6 end as text_output_usd,
        case when coalesce(mainline_uncached_input_tokens, 0) = 0 then 0
            else mainline_uncached_input_tokens * mainline_input_rate / 1e6 end as mainline_input_usd,
        case when coalesce(mainline_cached_input_tokens, 0) = 0 then 0
            else mainline_cached_input_tokens * mainline_cached_input_rate / 1e6 end as mainline_cached_input_usd,
        case when coalesce(mainline_output_tokens, 0) = 0 then 0
            else mainline_output_tokens * mainline_output_rate / 1e6 end as mainline_output_usd,
        coalesce(billed_model, '(no model recorded)')
        || case when service_tier = 'standard' then '' else ' (' || service_tier || ' tier)' end as image_rate_label,
        coalesce(mainline_model, '(no mainline model recorded)')
        || case when service_tier = 'standard' then '' else ' (' || service_tier || ' tier)' end as mainline_rate_label,
        route = 'responses' or mainline_model is not null as has_mainline
    from joined
),

official as (
    select
        *,
        -- null as soon as one component is (tokens without a rate): unpriced, never a partial sum
        text_input_usd + cached_text_input_usd + image_input_usd + cached_image_input_usd
        + image_output_usd + text_output_usd as image_components_usd,
        case when has_mainline then mainline_input_usd + mainline_cached_input_usd + mainline_output_usd else 0 end
            as mainline_components_usd
    from components
),

official_total as (
    select
        *,
        -- no usage reported (e.g. an errored call): the official cost is unknown, not $0
        case when usage_source <> 'missing' then image_components_usd end as image_official_cost_usd,
        case when usage_source <> 'missing' and has_mainline then mainline_components_usd end
            as mainline_official_cost_usd,
        case when usage_source <> 'missing' then image_components_usd + mainline_components_usd end
            as official_cost_usd,
        case
            when usage_source = 'missing' then 'missing_usage'
            when image_components_usd is null or mainline_components_usd is null then 'unpriced_model'
            else 'priced'
        end as official_status,
        -- why the official cost is null, in one line (only computed when the column is read)
        case
            when usage_source = 'missing' then 'no usage reported'
            when image_components_usd is null or mainline_components_usd is null then concat_ws('; ',
                case when image_components_usd is null then
                    case when image_has_rates is null then 'no official rates for ' || image_rate_label
                    else concat_ws('; ',
                        case when text_input_usd is null then 'no official text_input rate for ' || image_rate_label end,
                        case when cached_text_input_usd is null
                            then 'no official cached_text_input rate for ' || image_rate_label end,
                        case when image_input_usd is null then 'no official image_input rate for ' || image_rate_label end,
                        case when cached_image_input_usd is null
                            then 'no official cached_image_input rate for ' || image_rate_label end,
                        case when image_output_usd is null
                            then 'no official image_output rate for ' || image_rate_label end,
                        case when text_output_usd is null then 'no official text_output rate for ' || image_rate_label end
                    ) end
                end,
                case when mainline_components_usd is null then
                    case when mainline_has_rates is null then 'no official rates for ' || mainline_rate_label
                    else concat_ws('; ',
                        case when mainline_input_usd is null
                            then 'no official text_input rate for ' || mainline_rate_label end,
                        case when mainline_cached_input_usd is null
                            then 'no official cached_text_input rate for ' || mainline_rate_label end,
                        case when mainline_output_usd is null
                            then 'no official text_output rate for ' || mainline_rate_label end
                    ) end
                end
            )
        end as official_unpriced_reason
    from official
),

contract as (
    select
        *,
        -- per_call: the successful attempt, plus the failed ones when the contract charges them
        case when contract_id is not null then
            case when status = 'ok' then 1 else 0 end
            + case when charge_failed_calls then attempt_count - case when status = 'ok' then 1 else 0 end else 0 end
        end as charged_attempts,
        case when status = 'ok' then images_returned else coalesce(images_returned, 0) end as contract_images
    from official_total
),

contract_cost as (
    select
        *,
        case when contract_id is not null then
            coalesce(per_call_price * charged_attempts, 0)
            + case when per_image_price is null then 0 else per_image_price * contract_images end
            + case when not per_token then 0 when usage_source = 'missing' then null else
                -- cached tokens at the cached price when the contract has one, else at the input price
                (coalesce(text_input_price, 0) * coalesce(
                    case when cached_text_input_price is null then text_input_tokens
                        else uncached_text_input_tokens end, 0)
                + coalesce(cached_text_input_price, 0) * coalesce(cached_text_input_tokens, 0)
                + coalesce(image_input_price, 0) * coalesce(
                    case when cached_image_input_price is null then image_input_tokens
                        else uncached_image_input_tokens end, 0)
                + coalesce(cached_image_input_price, 0) * coalesce(cached_image_input_tokens, 0)
                + coalesce(image_output_price, 0) * coalesce(image_output_tokens, 0)
                + coalesce(text_output_price, 0) * coalesce(text_output_tokens, 0)) / 1e6
            end
        end as contract_cost
    from contract
),

final as (
    select
        call_id,
        trace_id,
        started_at,
        call_day,
        route,
        route_owner,
        server_address,
        service_name,
        service_tier,
        requested_model,
        reported_model,
        billed_model,
        mainline_model,
        size,
        quality,
        n,
        stream,
        partial_images_requested,
        partial_images_received,
        input_image_count,
        images_returned,
        text_input_tokens,
        image_input_tokens,
        cached_text_input_tokens,
        cached_image_input_tokens,
        image_output_tokens,
        text_output_tokens,
        mainline_input_tokens,
        mainline_cached_input_tokens,
        mainline_output_tokens,
        usage_source,
        cache_status,
        image_official_cost_usd,
        mainline_official_cost_usd,
        official_cost_usd,  -- on provider rows: the shadow price of the same tokens at OpenAI
        official_status,
        contract_id,
        contract_cost,
        contract_currency,
        charged_attempts,
        contract_cost * fx_usd_per_unit as contract_cost_usd,
        -- OpenAI route: billed at the official rates; a gateway: by its contract, in USD
        case when route_owner = 'openai' then official_cost_usd else contract_cost * fx_usd_per_unit end
            as billed_cost_usd,
        case when route_owner = 'openai' then 'official_rates' else 'provider_contract' end as cost_basis,
        case
            when route_owner = 'openai' then official_status
            when contract_id is null then 'no_contract'
            when contract_cost is null then 'missing_usage'
            when fx_usd_per_unit is null then 'no_fx_rate'
            else 'priced'
        end as pricing_status,
        case
            when route_owner = 'openai' then official_unpriced_reason
            when contract_id is null then
                'no ' || route_owner || ' contract for ' || coalesce(requested_model, '(no model recorded)')
                || ' on ' || call_day
            when contract_cost is null then 'no usage or image count reported for contract ' || contract_id
            when fx_usd_per_unit is null then
                'no ' || contract_currency || ' fx rate on or before ' || call_day
        end as unpriced_reason,
        status,
        error_type,
        error_code,
        moderation_stage,
        retry_reason,
        attempt_count as attempts,
        duration_s,
        request_id,
        tags
    from contract_cost
)

select * from final
