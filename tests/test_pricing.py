"""priced_calls / spend_daily / retry_causes against hand-computed figures.

Rates used (ledger/books/official_rates.toml, USD per 1M tokens, reference §5.1):
gpt-image-2 text_input 5.00, cached_text_input 1.25, image_input 8.00, image_output 30.00 (batch: half);
gpt-image-1 text_input 5.00, image_input 10.00, image_output 40.00; gpt-image-1.5 image_output 32.00.
laozhang.ai: USD 0.03 per call, failed calls not charged (ledger/books/provider_contracts.toml).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ledger.pricebook import load_books
from tests.fixtures.ledger import (
    LedgerFactory,
    add_facts,
    attempt_row,
    call_row,
    priced_call,
    priced_calls,
    query,
    write_book,
)


def usd(amount: float) -> object:
    """Dollars equal to a trillionth (float sums of the same terms may differ in the last bit)."""
    return pytest.approx(amount, abs=1e-12)


def day(d: int, month: int = 11, hour: int = 10) -> datetime:
    return datetime(2026, month, d, hour, 0, tzinfo=UTC)


# Test-only user books: a mainline rate, a CNY per-call contract with two FX days, a EUR contract
# without FX, a per-call contract that charges failed attempts, per-image and per-token contracts.
USER_BOOKS = """
[[rate]]
models = ["gpt-5.5"]
tier = "standard"
effective_from = 2026-01-01
source_url = "https://example.test/gpt-5.5-pricing"
checked_on = 2026-11-20
notes = "test fixture, not a real price"
usd_per_1m = { text_input = 1.25, cached_text_input = 0.125, text_output = 10.00 }

[[contract]]
provider = "cn-gateway"
contract_id = "cn-gw-2026"
model_pattern = "gpt-image-2*"
unit = "per_call"
price = 0.20
currency = "CNY"
charge_failed_calls = false
effective_from = 2026-01-01
source = "test contract"

[[contract]]
provider = "eu-gateway"
contract_id = "eu-gw-2026"
model_pattern = "gpt-image-*"
unit = "per_call"
price = 0.05
currency = "EUR"
charge_failed_calls = false
effective_from = 2026-01-01
source = "test contract"

[[contract]]
provider = "retry-gw"
contract_id = "retry-gw-2026"
model_pattern = "*"
unit = "per_call"
price = 0.05
currency = "USD"
charge_failed_calls = true
effective_from = 2026-01-01
source = "test contract"

[[contract]]
provider = "laozhang.ai"
contract_id = "laozhang-2.5"
model_pattern = "gpt-image-2.5*"
unit = "per_call"
price = 0.05
currency = "USD"
charge_failed_calls = false
effective_from = 2026-01-01
source = "test contract"

[[contract]]
provider = "img-gw"
contract_id = "img-gw-2026"
model_pattern = "gpt-image-2"
unit = "per_image"
price = 0.02
currency = "USD"
charge_failed_calls = false
effective_from = 2026-01-01
source = "test contract"

[[contract]]
provider = "tok-gw"
contract_id = "tok-gw-2026"
model_pattern = "gpt-image-2"
unit = "per_1m_tokens"
token_class = "text_input"
price = 4.00
currency = "USD"
charge_failed_calls = false
effective_from = 2026-01-01
source = "test contract"

[[contract]]
provider = "tok-gw"
contract_id = "tok-gw-2026"
model_pattern = "gpt-image-2"
unit = "per_1m_tokens"
token_class = "image_output"
price = 24.00
currency = "USD"
charge_failed_calls = false
effective_from = 2026-01-01
source = "test contract"

[[fx]]
currency = "CNY"
day = 2026-11-01
usd_per_unit = 0.14
source = "test rate"

[[fx]]
currency = "CNY"
day = 2026-11-10
usd_per_unit = 0.15
source = "test rate"
"""


@pytest.fixture
def user_ledger(ledger_factory: LedgerFactory, tmp_path: Path) -> Path:
    """Packaged books plus USER_BOOKS."""
    write_book(tmp_path / "prices", "test_books.toml", USER_BOOKS)
    return ledger_factory(tmp_path / "prices")


def test_images_generate_call_priced_at_official_rates(ledger_file: Path) -> None:
    call = call_row()  # gpt-image-2, 81 text input, 1756 image output tokens (reference §2.4)
    add_facts(ledger_file, calls=[call])
    row = priced_call(ledger_file, call["call_id"])
    expected = (81 * 5.00 + 1756 * 30.00) / 1e6  # = 0.053085
    assert row["image_official_cost_usd"] == usd(expected)
    assert row["mainline_official_cost_usd"] is None
    assert row["official_cost_usd"] == usd(0.053085)
    assert row["billed_cost_usd"] == usd(0.053085)
    assert (row["cost_basis"], row["pricing_status"], row["official_status"]) == ("official_rates", "priced", "priced")
    assert row["unpriced_reason"] is None
    assert (row["contract_id"], row["contract_cost"], row["contract_cost_usd"], row["charged_attempts"]) == (None,) * 4
    assert (row["call_day"], row["billed_model"], row["size"], row["quality"]) == (
        date(2026, 11, 3),
        "gpt-image-2",
        "1024x1024",
        "medium",
    )


def test_edit_prices_image_input_tokens(ledger_file: Path) -> None:
    # gpt-image-1 edit, one ~1024² input at low fidelity (reference §2.4): 25 text + 194 image in, 272 out
    call = call_row(
        route="images.edit",
        requested_model="gpt-image-1",
        started_at=day(1, month=10),
        input_image_count=1,
        text_input_tokens=25,
        image_input_tokens=194,
        image_output_tokens=272,
        quality_effective="low",
    )
    add_facts(ledger_file, calls=[call])
    row = priced_call(ledger_file, call["call_id"])
    assert row["official_cost_usd"] == usd((25 * 5.00 + 194 * 10.00 + 272 * 40.00) / 1e6)  # 0.012945
    assert row["billed_cost_usd"] == usd(0.012945)
    assert row["pricing_status"] == "priced"


def test_streamed_call_trusts_reported_usage_without_adding_partials(ledger_file: Path) -> None:
    # 2 partials received; the reported output already holds their 100 tokens each (reference §3.2, §12.3)
    call = call_row(stream=True, partial_images_requested=2, partial_images_received=2, image_output_tokens=1956)
    add_facts(ledger_file, calls=[call])
    row = priced_call(ledger_file, call["call_id"])
    assert row["official_cost_usd"] == usd((81 * 5.00 + 1956 * 30.00) / 1e6)  # 0.059085, not + 2 × $0.003
    assert (row["partial_images_requested"], row["partial_images_received"]) == (2, 2)


def test_batch_tier_is_half_price(ledger_file: Path) -> None:
    call = call_row(service_tier="batch")
    add_facts(ledger_file, calls=[call])
    assert priced_call(ledger_file, call["call_id"])["official_cost_usd"] == usd((81 * 2.50 + 1756 * 15.00) / 1e6)


def _responses_call(mainline_model: str) -> dict[str, object]:
    # tool usage: 112 text input of which 100 cached, 1756 image output; mainline: 1020 in (1000 cached), 30 out
    return call_row(
        route="responses",
        mainline_model=mainline_model,
        cache_status="reported",
        text_input_tokens=112,
        cached_text_input_tokens=100,
        image_input_tokens=0,
        cached_image_input_tokens=0,
        mainline_input_tokens=1020,
        mainline_cached_input_tokens=1000,
        mainline_output_tokens=30,
    )


def test_responses_call_with_unpriced_mainline_model(ledger_file: Path) -> None:
    call = _responses_call("gpt-5.4")  # no official gpt-5.4 rate in the packaged books
    add_facts(ledger_file, calls=[call])
    row = priced_call(ledger_file, call["call_id"])
    assert row["image_official_cost_usd"] == usd((12 * 5.00 + 100 * 1.25 + 1756 * 30.00) / 1e6)  # 0.052865
    assert row["mainline_official_cost_usd"] is None
    assert row["official_cost_usd"] is None
    assert row["billed_cost_usd"] is None
    assert (row["official_status"], row["pricing_status"]) == ("unpriced_model", "unpriced_model")
    assert row["unpriced_reason"] == "no official rates for gpt-5.4"


def test_responses_call_with_user_mainline_rate_is_fully_priced(user_ledger: Path) -> None:
    call = _responses_call("gpt-5.5")  # USER_BOOKS: 1.25 / 0.125 / 10.00
    add_facts(user_ledger, calls=[call])
    row = priced_call(user_ledger, call["call_id"])
    image = (12 * 5.00 + 100 * 1.25 + 1756 * 30.00) / 1e6  # 0.052865
    mainline = (20 * 1.25 + 1000 * 0.125 + 30 * 10.00) / 1e6  # 0.00045
    assert row["image_official_cost_usd"] == usd(image)
    assert row["mainline_official_cost_usd"] == usd(mainline)
    assert row["official_cost_usd"] == usd(0.053315)
    assert row["billed_cost_usd"] == usd(0.053315)
    assert (row["pricing_status"], row["unpriced_reason"]) == ("priced", None)


def test_provider_per_call_contract_in_cny_with_fx(user_ledger: Path) -> None:
    early = call_row(route_owner="cn-gateway", started_at=day(5))  # CNY rate of 11-01: 0.14
    late = call_row(route_owner="cn-gateway", started_at=day(12))  # CNY rate of 11-10: 0.15
    add_facts(user_ledger, calls=[early, late])
    rows = priced_calls(user_ledger)
    for call, fx in ((early, 0.14), (late, 0.15)):
        row = rows[call["call_id"]]
        assert (row["contract_id"], row["contract_currency"]) == ("cn-gw-2026", "CNY")
        assert row["contract_cost"] == usd(0.20)
        assert row["contract_cost_usd"] == usd(0.20 * fx)
        assert row["billed_cost_usd"] == usd(0.20 * fx)
        assert row["official_cost_usd"] == usd(0.053085)  # shadow: the same tokens at OpenAI's list price
        assert (row["cost_basis"], row["pricing_status"]) == ("provider_contract", "priced")


def test_provider_call_without_fx_rate(user_ledger: Path) -> None:
    euro = call_row(route_owner="eu-gateway", started_at=day(5))  # EUR: no fx rate at all
    before_fx = call_row(route_owner="cn-gateway", started_at=day(31, month=10))  # before the first CNY rate
    add_facts(user_ledger, calls=[euro, before_fx])
    rows = priced_calls(user_ledger)
    row = rows[euro["call_id"]]
    assert (row["contract_cost"], row["contract_currency"]) == (usd(0.05), "EUR")
    assert (row["contract_cost_usd"], row["billed_cost_usd"]) == (None, None)
    assert (row["pricing_status"], row["unpriced_reason"]) == ("no_fx_rate", "no EUR fx rate on or before 2026-11-05")
    row = rows[before_fx["call_id"]]
    assert (row["pricing_status"], row["unpriced_reason"]) == ("no_fx_rate", "no CNY fx rate on or before 2026-10-31")


def test_unknown_models_and_missing_rates_are_unpriced_never_zero(ledger_file: Path) -> None:
    unknown = call_row(requested_model="gpt-image-9")
    flare = call_row(requested_model="gpt-image-2.6-flare")  # no published rate: left out on purpose
    text_out = call_row(text_output_tokens=5)  # gpt-image-2 has no official text_output rate
    zero_text_out = call_row(text_output_tokens=0)  # a zero count needs no rate
    no_contract = call_row(route_owner="acme-gw")
    no_usage = call_row(usage_source="missing", text_input_tokens=None, image_output_tokens=None)
    add_facts(ledger_file, calls=[unknown, flare, text_out, zero_text_out, no_contract, no_usage])
    rows = priced_calls(ledger_file)

    expected = {
        unknown["call_id"]: ("unpriced_model", "no official rates for gpt-image-9"),
        flare["call_id"]: ("unpriced_model", "no official rates for gpt-image-2.6-flare"),
        text_out["call_id"]: ("unpriced_model", "no official text_output rate for gpt-image-2"),
        no_contract["call_id"]: ("no_contract", "no acme-gw contract for gpt-image-2 on 2026-11-03"),
        no_usage["call_id"]: ("missing_usage", "no usage reported"),
    }
    for call_id, (status, reason) in expected.items():
        row = rows[call_id]
        assert (row["pricing_status"], row["unpriced_reason"], row["billed_cost_usd"]) == (status, reason, None)
    assert rows[zero_text_out["call_id"]]["billed_cost_usd"] == usd(0.053085)
    # the gateway call without a contract still shows its shadow price
    assert rows[no_contract["call_id"]]["official_cost_usd"] == usd(0.053085)


def test_rate_change_mid_month_applies_by_call_day(ledger_factory: LedgerFactory, tmp_path: Path) -> None:
    write_book(
        tmp_path / "prices",
        "rate_change.toml",
        """
[[rate]]
models = ["gpt-image-2"]
tier = "standard"
effective_from = 2026-11-15
source_url = "https://example.test/pricing-change"
checked_on = 2026-11-15
usd_per_1m = { image_output = 36.00 }
""",
    )
    ledger = ledger_factory(tmp_path / "prices")
    before = call_row(started_at=datetime(2026, 11, 14, 23, 59, 59, tzinfo=UTC))
    after = call_row(started_at=datetime(2026, 11, 15, 0, 0, 0, tzinfo=UTC))
    add_facts(ledger, calls=[before, after])
    rows = priced_calls(ledger)
    assert rows[before["call_id"]]["official_cost_usd"] == usd((81 * 5.00 + 1756 * 30.00) / 1e6)
    assert rows[after["call_id"]]["official_cost_usd"] == usd((81 * 5.00 + 1756 * 36.00) / 1e6)
    # the packaged window now ends where the new one starts; nothing else about it changed
    books = load_books(tmp_path / "prices")
    old = books.rate("gpt-image-2", "image_output", on=date(2026, 11, 14))
    new = books.rate("gpt-image-2", "image_output", on=date(2026, 11, 15))
    assert old is not None and new is not None
    assert (old.usd_per_1m, old.effective_from, old.effective_to) == (30.00, date(2026, 4, 21), date(2026, 11, 15))
    assert (new.usd_per_1m, new.effective_from, new.effective_to) == (36.00, date(2026, 11, 15), None)


def test_failed_attempts_charged_only_when_the_contract_says_so(user_ledger: Path) -> None:
    # laozhang.ai: 0.03 USD per call, charge_failed_calls = false; retry-gw: 0.05 USD, charge_failed_calls = true
    laozhang_retried = call_row(route_owner="laozhang.ai", attempt_count=3)  # 2 failed attempts, then ok
    laozhang_failed = call_row(
        route_owner="laozhang.ai", status="error", attempt_count=3, images_returned=0, usage_source="missing"
    )
    retry_ok = call_row(route_owner="retry-gw", attempt_count=3)
    retry_failed = call_row(
        route_owner="retry-gw", status="error", attempt_count=2, images_returned=0, usage_source="missing"
    )
    add_facts(user_ledger, calls=[laozhang_retried, laozhang_failed, retry_ok, retry_failed])
    expected = {
        laozhang_retried["call_id"]: (1, 0.03 * 1),
        laozhang_failed["call_id"]: (0, 0.03 * 0),
        retry_ok["call_id"]: (3, 0.05 * 3),
        retry_failed["call_id"]: (2, 0.05 * 2),
    }
    rows = priced_calls(user_ledger)
    for call_id, (charged, cost) in expected.items():
        row = rows[call_id]
        assert row["charged_attempts"] == charged
        assert row["contract_cost_usd"] == usd(cost)
        assert row["billed_cost_usd"] == usd(cost)
        assert row["pricing_status"] == "priced"
    # the failed call's shadow price is unknown (no usage), not $0
    assert rows[laozhang_failed["call_id"]]["official_cost_usd"] is None


def test_most_specific_pattern_and_per_image_and_per_token_contracts(user_ledger: Path) -> None:
    sunburst = call_row(route_owner="laozhang.ai", requested_model="gpt-image-2.5-sunburst")
    image2 = call_row(route_owner="laozhang.ai")
    per_image = call_row(route_owner="img-gw", n=2, images_returned=2)
    per_token = call_row(route_owner="tok-gw")
    add_facts(user_ledger, calls=[sunburst, image2, per_image, per_token])
    rows = priced_calls(user_ledger)
    assert rows[sunburst["call_id"]]["contract_id"] == "laozhang-2.5"  # gpt-image-2.5* beats gpt-image-2*
    assert rows[sunburst["call_id"]]["billed_cost_usd"] == usd(0.05)
    assert rows[image2["call_id"]]["contract_id"] == "laozhang-gpt-image-2-per-call"
    assert rows[image2["call_id"]]["billed_cost_usd"] == usd(0.03)
    assert rows[per_image["call_id"]]["billed_cost_usd"] == usd(0.02 * 2)
    assert rows[per_token["call_id"]]["billed_cost_usd"] == usd((81 * 4.00 + 1756 * 24.00) / 1e6)


def test_spend_daily_rows(ledger_file: Path) -> None:
    calls = [
        call_row(),  # 0.053085
        call_row(text_output_tokens=5),  # unpriced
        call_row(route_owner="laozhang.ai"),  # contract 0.03, shadow 0.053085
        call_row(route_owner="laozhang.ai", status="error", images_returned=0, usage_source="missing"),  # $0, shadow ?
        call_row(requested_model="gpt-image-1.5", started_at=day(4)),  # (81*5 + 1756*32)/1e6
    ]
    add_facts(ledger_file, calls=calls)
    rows = query(ledger_file, "select * from spend_daily order by day, route_owner")
    assert list(rows[0]) == [
        "day",
        "route_owner",
        "billed_model",
        "cost_basis",
        "calls",
        "failed_calls",
        "images",
        "official_cost_usd",
        "contract_cost_usd",
        "billed_cost_usd",
        "unpriced_calls",
    ]
    got = [tuple(r.values()) for r in rows]
    assert got == [
        (
            date(2026, 11, 3),
            "laozhang.ai",
            "gpt-image-2",
            "provider_contract",
            2,
            1,
            1,
            usd(0.053085),
            usd(0.03),
            usd(0.03),
            0,
        ),
        (date(2026, 11, 3), "openai", "gpt-image-2", "official_rates", 2, 0, 2, usd(0.053085), None, usd(0.053085), 1),
        (
            date(2026, 11, 4),
            "openai",
            "gpt-image-1.5",
            "official_rates",
            1,
            0,
            1,
            usd((81 * 5.00 + 1756 * 32.00) / 1e6),
            None,
            usd((81 * 5.00 + 1756 * 32.00) / 1e6),
            0,
        ),
    ]


def test_retry_causes_rows(user_ledger: Path) -> None:
    a = call_row(attempt_count=3, retry_reason="rate_limit")  # openai: 2 × 429, then ok
    b = call_row(attempt_count=3, status="error", retry_reason="provider_5xx", usage_source="missing")  # 3 × 500
    c = call_row(route_owner="laozhang.ai", attempt_count=2, retry_reason="timeout")  # timeout, then ok
    d = call_row(route_owner="retry-gw", attempt_count=2, status="error", retry_reason="rate_limit")  # 2 × 429
    server_error = {
        "status_code": 500,
        "error_type": "server_error",
        "error_code": None,
        "retry_reason": "provider_5xx",
    }
    timeout = {"status_code": None, "error_type": "APITimeoutError", "error_code": None, "retry_reason": "timeout"}
    ok = {"status_code": 200, "error_type": None, "error_code": None, "retry_reason": None}
    attempts = [
        attempt_row(a["call_id"], 0),
        attempt_row(a["call_id"], 1),
        attempt_row(a["call_id"], 2, **ok),
        *(attempt_row(b["call_id"], n, **server_error) for n in range(3)),
        attempt_row(c["call_id"], 0, **timeout),
        attempt_row(c["call_id"], 1, **ok),
        attempt_row(d["call_id"], 0),
        attempt_row(d["call_id"], 1),
    ]
    add_facts(user_ledger, calls=[a, b, c, d], attempts=attempts)
    rows = query(user_ledger, "select * from retry_causes order by route_owner, cause")
    assert [tuple(r.values()) for r in rows] == [
        # cause, route_owner, attempts, calls, final_failures, failed_attempt_cost_usd
        ("timeout", "laozhang.ai", 1, 1, 0, 0.0),  # laozhang.ai does not charge failed calls
        ("provider_5xx", "openai", 3, 1, 1, None),  # official route: unknown (reference §12.6)
        ("rate_limit", "openai", 2, 1, 0, None),
        ("rate_limit", "retry-gw", 2, 1, 1, usd(2 * 0.05)),
    ]


def test_call_never_sent_costs_a_known_zero(ledger_file):
    # a budget guard blocked it: no HTTP attempt, so nothing can have been billed (not "missing usage")
    blocked = call_row(
        call_id="blocked",
        attempt_count=0,
        status="error",
        error_type="BudgetExceeded",
        usage_source="missing",
        text_input_tokens=None,
        image_input_tokens=None,
        image_output_tokens=None,
        text_output_tokens=None,
    )
    add_facts(ledger_file, calls=[blocked])
    row = priced_call(ledger_file, "blocked")
    assert (row["usage_source"], row["official_cost_usd"], row["billed_cost_usd"]) == ("not_sent", 0.0, 0.0)
    assert row["pricing_status"] == "priced"
