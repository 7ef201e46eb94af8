"""The estimator with its inputs: provider contracts from a prices dir, a DuckDB ledger, plan-file lines."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.db import open_ledger
from ledger.errors import UserError
from ledger.estimator import EstimateRequest, Observations, Observed, estimate, load_observations
from ledger.estimator.plan import estimate_plan
from ledger.estimator.plan_lines import group_lines
from ledger.pricebook import PriceBooks, load_books

ON = date(2026, 11, 24)


@pytest.fixture(scope="module")
def books() -> PriceBooks:
    return load_books()


def est(books: PriceBooks, model: str, size: str = "auto", quality: str = "auto", **kw: object):
    return estimate(EstimateRequest(model=model, size=size, quality=quality, **kw), books, on=ON)  # type: ignore[arg-type]


# --- provider contracts ----------------------------------------------------------------------------

CONTRACTS_TOML = """
[[contract]]
provider = "yuanbao.cn"
contract_id = "yb-2026-per-image"
model_pattern = "gpt-image-2"
unit = "per_image"
price = 0.35
currency = "CNY"
charge_failed_calls = false
effective_from = 2026-01-01
source = "test contract"

[[contract]]
provider = "tokenshop"
contract_id = "ts-tokens"
model_pattern = "gpt-image-*"
unit = "per_1m_tokens"
token_class = "image_output"
price = 24.0
currency = "USD"
charge_failed_calls = true
effective_from = 2026-01-01
source = "test contract"

[[contract]]
provider = "tokenshop"
contract_id = "ts-tokens"
model_pattern = "gpt-image-*"
unit = "per_1m_tokens"
token_class = "text_input"
price = 4.0
currency = "USD"
charge_failed_calls = true
effective_from = 2026-01-01
source = "test contract"

[[contract]]
provider = "eurogate"
contract_id = "eg-1"
model_pattern = "gpt-image-2"
unit = "per_call"
price = 0.02
currency = "EUR"
charge_failed_calls = false
effective_from = 2026-01-01
source = "test contract"

[[fx]]
currency = "CNY"
day = 2026-11-01
usd_per_unit = 0.14
source = "test rate"
"""


@pytest.fixture()
def contract_books(tmp_path: Path) -> PriceBooks:
    (tmp_path / "contracts.toml").write_text(CONTRACTS_TOML)
    return load_books(tmp_path)


def test_every_contract_side_by_side(contract_books: PriceBooks):
    result = est(contract_books, "gpt-image-2", "1024x1024", "high", n=2, prompt_chars=400)
    routes = {r.route_owner: r for r in result.routes}
    assert sorted(routes) == ["eurogate", "laozhang.ai", "tokenshop", "yuanbao.cn"]
    # official: 2 x 7024 out x $30/1M + 100 text x $5/1M
    assert result.official_usd.expected == pytest.approx(14048 * 30 / 1e6 + 100 * 5 / 1e6)
    # per_image: 0.35 CNY x n=2 = 0.70 CNY; x 0.14 USD/CNY = $0.098
    cny = routes["yuanbao.cn"]
    assert (cny.currency, cny.cost_basis, cny.contract_id) == ("CNY", "per_image", "yb-2026-per-image")
    assert cny.amount.expected == pytest.approx(0.70)
    assert cny.usd.expected == pytest.approx(0.70 * 0.14)
    # per_call: once per request whatever n is
    assert routes["laozhang.ai"].amount.expected == pytest.approx(0.03)
    assert routes["laozhang.ai"].cost_basis == "per_call"
    # per_1m_tokens per class: 14048 image out x 24/1M + text 50/100/150 x 4/1M
    tokens = routes["tokenshop"]
    assert tokens.cost_basis == "per_1m_tokens"
    assert tokens.amount.low == pytest.approx(14048 * 24 / 1e6 + 50 * 4 / 1e6)
    assert tokens.amount.expected == pytest.approx(14048 * 24 / 1e6 + 100 * 4 / 1e6)
    assert tokens.amount.high == pytest.approx(14048 * 24 / 1e6 + 150 * 4 / 1e6)
    assert tokens.usd == tokens.amount
    # EUR without an FX rate: amount known, USD unknown, with a note
    assert routes["eurogate"].amount.expected == pytest.approx(0.02)
    assert routes["eurogate"].usd is None
    assert any("eurogate (eg-1): no EUR FX rate on or before 2026-11-24" in note for note in result.notes)


def test_route_filter(contract_books: PriceBooks):
    only = est(contract_books, "gpt-image-2", "1024x1024", "high", route="yuanbao.cn")
    assert [r.route_owner for r in only.routes] == ["yuanbao.cn"]
    assert est(contract_books, "gpt-image-2", "1024x1024", "high", route="openai").routes == []
    with pytest.raises(UserError) as info:
        est(contract_books, "gpt-image-1", "1024x1024", "high", route="yuanbao.cn")
    assert str(info.value) == (
        "no contract of route 'yuanbao.cn' covers gpt-image-1 on 2026-11-24; use --route with one of: all, openai, "
        "tokenshop"
    )


def test_estimate_to_json_keys(contract_books: PriceBooks):
    data = est(contract_books, "gpt-image-2", "1024x1024", "low", route="yuanbao.cn").to_json()
    assert {
        "model",
        "size",
        "quality",
        "n",
        "partial_images",
        "output_tokens",
        "official_usd",
        "routes",
        "notes",
    } <= set(data)
    assert data["output_tokens"] == {"low": 196, "expected": 196, "high": 196}
    assert data["official_usd"] == {"low": 0.00588, "expected": 0.00588, "high": 0.00588}
    assert data["routes"] == [
        {
            "route_owner": "yuanbao.cn",
            "contract_id": "yb-2026-per-image",
            "cost_basis": "per_image",
            "currency": "CNY",
            "amount": {"low": 0.35, "expected": 0.35, "high": 0.35},
            "usd": {"low": 0.049, "expected": 0.049, "high": 0.049},
        }
    ]


# --- calibration from a real DuckDB ledger ----------------------------------------------------------

_INSERT = """
insert into calls (call_id, trace_id, started_at, route, route_owner, requested_model, size_effective,
                   quality_effective, n, partial_images_received, images_returned, input_image_count,
                   image_input_tokens, image_output_tokens, usage_source, status)
values (?, 't', timestamptz '2026-11-20 10:00:00+00', ?, 'openai', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _insert(con, i: int, **kw: object) -> None:
    row = {
        "route": "images.generate", "model": "gpt-image-2", "size": "1024x1024", "quality": "high", "n": 1,
        "partials": 0, "images": 1, "inputs": 0, "image_in": 0, "image_out": 7024, "usage": "reported",
        "status": "ok",
    }  # fmt: skip
    row.update(kw)
    con.execute(_INSERT, [f"c{i:03d}", *row.values()])


def test_calibration_from_ledger(tmp_path: Path, books: PriceBooks):
    ledger = tmp_path / "ledger.duckdb"
    with open_ledger(ledger) as con:
        # 10 observed gpt-image-2 1024x1024 high calls: per image 7000, 7010, ..., 7090
        for i in range(10):
            _insert(con, i, image_out=7000 + 10 * i)
        # the same per-image count hidden behind n=2 and 3 partials: (2 x 7050 + 300) / 2 = 7050
        _insert(con, 10, n=2, images=2, partials=3, image_out=2 * 7050 + 300)
        # ignored: an error, a call without usage, another size
        _insert(con, 11, status="error", image_out=99999)
        _insert(con, 12, usage="missing", image_out=99999)
        _insert(con, 13, size="2048x2048", image_out=14000)
        # edits: 6 calls, per input image 1000, 1100, ..., 1500 (two inputs each)
        for i in range(6):
            _insert(con, 20 + i, route="images.edit", inputs=2, image_in=2 * (1000 + 100 * i), quality="low",
                    image_out=196)  # fmt: skip
    with open_ledger(ledger, read_only=True) as con:
        observed = load_observations(con)

    stat = observed.output_per_image[("gpt-image-2", "1024x1024", "high")]
    assert stat.count == 11
    # values 7000..7090 plus 7050: median of 11 sorted values = 7050; p10 = 7010, p90 = 7080 (linear)
    assert (stat.p10, stat.median, stat.p90) == (7010.0, 7050.0, 7080.0)
    assert observed.output_per_image[("gpt-image-2", "2048x2048", "high")].count == 1
    inputs = observed.input_per_image["gpt-image-2"]
    assert inputs.count == 6
    assert inputs.median == pytest.approx(1250.0)

    result = estimate(EstimateRequest("gpt-image-2", "1024x1024", "high", n=2), books, observed=observed, on=ON)
    assert (result.output_tokens.low, result.output_tokens.expected, result.output_tokens.high) == (
        2 * 7010,
        2 * 7050,
        2 * 7080,
    )
    assert any("p10 / median / p90 of 11 observed gpt-image-2 1024x1024 high calls" in n for n in result.notes)

    # one observation is not enough: the calculator is used and the note says so
    sparse = estimate(EstimateRequest("gpt-image-2", "2048x2048", "high"), books, observed=observed, on=ON)
    assert sparse.output_tokens.expected == 14272
    assert "only 1 observed gpt-image-2 2048x2048 high calls (< 5): not used" in sparse.notes

    # input images: p10 / median / p90 per image x 3 images (p10 = 1050, median 1250, p90 = 1450)
    edit = estimate(
        EstimateRequest("gpt-image-2", "1024x1024", "low", input_images=("1024x1024",) * 3),
        books,
        observed=observed,
        on=ON,
    )
    image_input = edit.tokens["image_input"]
    assert (image_input.low, image_input.expected, image_input.high) == (3 * 1050, 3 * 1250, 3 * 1450)


def test_observations_need_five_rows(books: PriceBooks):
    observed = Observations(output_per_image={("gpt-image-2", "1024x1024", "low"): Observed(4, 150.0, 190.0, 230.0)})
    result = estimate(EstimateRequest("gpt-image-2", "1024x1024", "low"), books, observed=observed, on=ON)
    assert result.output_tokens.expected == 196
    five = Observations(output_per_image={("gpt-image-2", "1024x1024", "low"): Observed(5, 150.0, 190.0, 230.0)})
    result = estimate(EstimateRequest("gpt-image-2", "1024x1024", "low"), books, observed=five, on=ON)
    assert (result.output_tokens.low, result.output_tokens.expected, result.output_tokens.high) == (150, 190, 230)


# --- plan lines: prompts pulled out before grouping -------------------------------------------------

# Pieces that json.dumps escapes in every way: quotes, backslashes (also before "u"), control characters,
# non-ASCII (\uXXXX with ensure_ascii) and astral characters (surrogate pairs with ensure_ascii).
PROMPT_PIECES = ["a", " ", '"', "\\", "/", "\n", "\t", "\x01", "中", "é", "😀", "🦊", "\\u00e9", "\\ud83d", "u"]
prompts_text = st.lists(st.sampled_from(PROMPT_PIECES), max_size=30).map("".join)


@given(prompts=st.lists(prompts_text, min_size=1, max_size=20), ascii_only=st.booleans())
@settings(max_examples=60, deadline=None)
def test_pulled_prompt_length_is_the_decoded_length(prompts: list[str], ascii_only: bool):
    lines = [json.dumps({"model": "gpt-image-2", "prompt": p}, ensure_ascii=ascii_only) for p in prompts]
    keyed, groups, _ = group_lines(lines)
    assert keyed.sort("lineno")["chars"].to_list() == [len(p) for p in prompts]
    assert groups["key"].to_list() == ['{"model": "gpt-image-2", "prompt": ""}']


def test_plan_line_errors(tmp_path: Path, books: PriceBooks):
    plan = tmp_path / "plan.jsonl"
    plan.write_bytes(
        b'{"model": "gpt-image-2", "n": 1, "n": 2}\n'
        b"\xff\xfe\n"
        b'{"model": "gpt-image-2", "prompt_chars": 40000}\n'
        b'{"model": "gpt-image-2", "prompt": "a", "prompt_chars": 4}\n'
        b'{"model": "gpt-image-2", "input_images": "1024x1024"}\n'
        b'{"model": "gpt-image-2", "size": "1024x1024", "quality": "low", "background": "opaque"}\n'
    )
    result = estimate_plan(plan, books, on=ON)
    assert result.errors == [
        (1, "duplicate key 'n'"),
        (2, "not valid UTF-8 text"),
        (3, "prompt length must be from 0 to 32000 characters (got 40000)"),
        (4, 'give "prompt" or "prompt_chars", not both'),
        (5, 'input_images must be a list (got "1024x1024")'),
    ]
    assert (result.requests, result.lines) == (1, 6)
    assert result.official_usd.expected == pytest.approx(196 * 30 / 1e6)


def test_prompts_the_vectorized_reader_refuses_are_measured_by_python(tmp_path: Path, books: PriceBooks):
    plan = tmp_path / "plan.jsonl"
    base = '{"model": "gpt-image-2", "size": "1024x1024", "quality": "low", '
    plan.write_text(
        base + '"prompt": "\\ud83d"}\n'  # a lone surrogate escape: Python reads 1 character
        + base + '"prompt": ""}\n'
        + base + '"prompt": "caf\\u00e9 \\ud83e\\udd8a"}\n'  # "café 🦊": 6 characters
    )  # fmt: skip
    keyed, _, _ = group_lines(plan.read_text().splitlines())
    assert keyed.sort("lineno")["chars"].to_list() == [None, 0, 6]
    result = estimate_plan(plan, books, on=ON)
    assert (result.requests, result.distinct_requests, result.errors) == (3, 1, [])
    # 1 + 0 + 6 = 7 characters -> 7 / 4 = 1.75 text tokens (0.875 .. 2.625)
    text = result.tokens["text_input"]
    assert (text.low, text.expected, text.high) == pytest.approx((0.875, 1.75, 2.625))
    assert result.official_usd.expected == pytest.approx(3 * 196 * 30 / 1e6 + 1.75 * 5 / 1e6)
