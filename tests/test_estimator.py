"""The pre-flight estimator: published prices, calculator readings, size rules, limits, auto ranges, inputs."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.errors import UserError
from ledger.estimator import (
    EstimateRequest,
    default_tool_model,
    estimate,
    model_facts,
    output_token_range,
    output_tokens,
    validate_size,
)
from ledger.estimator.tokens import TokenRange
from ledger.pricebook import OfficialRate, PriceBooks, load_books

ON = date(2026, 11, 24)


@pytest.fixture(scope="module")
def books() -> PriceBooks:
    return load_books()


def est(books: PriceBooks, model: str, size: str = "auto", quality: str = "auto", **kw: object):
    return estimate(EstimateRequest(model=model, size=size, quality=quality, **kw), books, on=ON)  # type: ignore[arg-type]


# --- reference §5.4: OpenAI's published per-image prices (output only) ---------------------------------

# Prices exactly as printed by the guide. Most have 3 decimals (the cent's tenth); a few are printed
# shorter ("$0.05", "$0.2", "$0.25"), so each is compared at the precision it is printed with: e.g.
# gpt-image-1.5 1536x1024 high = 6208 x $32/1M = $0.198656 -> "$0.2" (it would be 0.199 at 3 decimals).
PUBLISHED = {
    # model: {size: (low, medium, high)} in USD per image
    "gpt-image-2": {
        "1024x1024": ("0.006", "0.053", "0.211"),
        "1024x1536": ("0.005", "0.041", "0.165"),
        "1536x1024": ("0.005", "0.041", "0.165"),
    },
    "gpt-image-1.5": {
        "1024x1024": ("0.009", "0.034", "0.133"),
        "1024x1536": ("0.013", "0.05", "0.2"),
        "1536x1024": ("0.013", "0.05", "0.2"),
    },
    "gpt-image-1": {
        "1024x1024": ("0.011", "0.042", "0.167"),
        "1024x1536": ("0.016", "0.063", "0.25"),
        "1536x1024": ("0.016", "0.063", "0.25"),
    },
}
PUBLISHED_CASES = [
    (model, size, quality, price)
    for model, sizes in PUBLISHED.items()
    for size, prices in sizes.items()
    for quality, price in zip(("low", "medium", "high"), prices, strict=True)
]


def _printed(value: float, like: str) -> str:
    """``value`` rounded and formatted with as many decimals as ``like`` has."""
    return f"{value:.{len(like.split('.')[1])}f}"


# One printed value is not the rounded product: gpt-image-1 1024x1024 high = 4160 x $40/1M = $0.1664, printed
# "$0.167" (0.0006 off). The estimator keeps the exact product; the test pins the gap instead of hiding it.
KNOWN_GAPS = {("gpt-image-1", "1024x1024", "high"): 4160 * 40 / 1e6}


@pytest.mark.parametrize(("model", "size", "quality", "price"), PUBLISHED_CASES)
def test_reproduces_published_per_image_price(books: PriceBooks, model: str, size: str, quality: str, price: str):
    result = est(books, model, size, quality)
    assert result.official_usd is not None
    for value in (result.official_usd.low, result.official_usd.expected, result.official_usd.high):
        if (model, size, quality) in KNOWN_GAPS:
            assert value == pytest.approx(KNOWN_GAPS[(model, size, quality)])
            assert abs(value - float(price)) < 0.001  # within a tenth of a cent
        else:
            assert _printed(value, price) == price


def test_gpt_image_2_published_prices_at_three_decimals(books: PriceBooks):
    # the gpt-image-2 row is printed with 3 decimals throughout: 196 / 1756 / 7024 and 158 / 1372 / 5488 x $30/1M
    for size, prices in PUBLISHED["gpt-image-2"].items():
        got = [round(est(books, "gpt-image-2", size, q).official_usd.expected, 3) for q in ("low", "medium", "high")]
        assert got == [float(p) for p in prices]


def test_published_price_arithmetic_by_hand(books: PriceBooks):
    # gpt-image-2 1024x1024 high: 7024 tokens x $30 / 1M = $0.21072; gpt-image-1.5 high: 4160 x $32 / 1M = $0.13312
    assert est(books, "gpt-image-2", "1024x1024", "high").official_usd.expected == pytest.approx(7024 * 30 / 1e6)
    assert est(books, "gpt-image-1.5", "1024x1024", "high").official_usd.expected == pytest.approx(4160 * 32 / 1e6)
    # gpt-image-1 1536x1024 low: 400 x $40 / 1M = $0.016
    assert est(books, "gpt-image-1", "1536x1024", "low").official_usd.expected == pytest.approx(400 * 40 / 1e6)


MINI_PUBLISHED = {
    "1024x1024": ("0.005", "0.011", "0.036"),
    "1024x1536": ("0.006", "0.015", "0.052"),
    "1536x1024": ("0.006", "0.015", "0.052"),
}


@pytest.mark.parametrize("size", list(MINI_PUBLISHED))
def test_mini_is_flagged_not_matched(books: PriceBooks, size: str):
    for quality, price in zip(("low", "medium", "high"), MINI_PUBLISHED[size], strict=True):
        result = est(books, "gpt-image-1-mini", size, quality)
        # the gpt-image-1 table x $8/1M: e.g. 272 x 8e-6 = $0.0022, not the published $0.005
        assert result.official_usd.expected == pytest.approx(output_tokens("gpt-image-1", size, quality) * 8 / 1e6)
        assert _printed(result.official_usd.expected, price) != price
        assert any("gpt-image-1-mini: its token counts are not published" in note for note in result.notes)
    assert model_facts("gpt-image-1-mini").output_tokens_published is False


# --- reference §5.5 / §5.7: token counts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "quality", "tokens"),
    [
        # official values reproduced by the calculator
        ("1024x1024", "low", 196),
        ("1024x1024", "medium", 1756),
        ("1024x1024", "high", 7024),
        ("1536x1024", "low", 158),
        ("1536x1024", "medium", 1372),
        ("1536x1024", "high", 5488),
        ("1024x1536", "low", 158),
        ("1024x1536", "medium", 1372),
        ("1024x1536", "high", 5488),
        # calculator readings, high quality
        ("1024x640", "high", 3824),
        ("3072x1024", "high", 3952),
        ("2560x1440", "high", 7370),
        ("3840x1280", "high", 5311),
        ("2048x2048", "high", 14272),
        ("3840x2160", "high", 13342),
        ("1792x1024", "high", 5063),
        ("3584x2048", "high", 12329),
        # calculator readings, low quality
        ("960x720", "low", 130),
        ("976x704", "low", 129),
        # pre-flight table rows
        ("2048x2048", "low", 397),
        ("2048x2048", "medium", 3568),
        ("2048x1152", "low", 157),
        ("2048x1152", "medium", 1413),
        ("2048x1152", "high", 5650),
        ("1152x2048", "high", 5650),
        ("2560x1440", "low", 205),
        ("2560x1440", "medium", 1843),
        ("3840x2160", "low", 371),
        ("3840x2160", "medium", 3336),
        ("2160x3840", "high", 13342),
        ("1024x640", "low", 107),
        ("1024x640", "medium", 956),
        ("1536x864", "low", 120),
        ("1536x864", "medium", 1078),
        ("1536x864", "high", 4312),
    ],
)
def test_gpt_image_2_calculator_readings(size: str, quality: str, tokens: int):
    assert output_tokens("gpt-image-2", size, quality) == tokens


def test_worst_case_over_all_valid_sizes():
    # §5.7 brute force: low 659 (2848x2912), medium 5930 and high 23,719 (2880x2880)
    assert output_tokens("gpt-image-2", "2848x2912", "low") == 659
    assert output_tokens("gpt-image-2", "2880x2880", "medium") == 5930
    assert output_tokens("gpt-image-2", "2880x2880", "high") == 23719
    assert [output_token_range("gpt-image-2", "auto", q).high for q in ("low", "medium", "high")] == [659, 5930, 23719]


@pytest.mark.parametrize(
    ("size", "tokens"),
    [("1024x1024", (272, 1056, 4160)), ("1024x1536", (408, 1584, 6240)), ("1536x1024", (400, 1568, 6208))],
)
def test_official_token_table(size: str, tokens: tuple[int, int, int]):
    for model in ("gpt-image-1", "gpt-image-1.5", "gpt-image-1-mini"):
        assert tuple(output_tokens(model, size, q) for q in ("low", "medium", "high")) == tokens


# --- sizes, qualities, limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (
            "1000x1000",
            "size 1000x1000 is not valid for gpt-image-2: both edges must be multiples of 16 (1000 is not); "
            "try 992x992",
        ),
        (
            "1030x1010",
            "size 1030x1010 is not valid for gpt-image-2: both edges must be multiples of 16 (1010 and 1030 are not); "
            "try 1024x1008",
        ),
        (
            "4096x2048",
            "size 4096x2048 is not valid for gpt-image-2: the longest edge must be at most 3840 px (got 4096)",
        ),
        (
            "3840x1024",
            "size 3840x1024 is not valid for gpt-image-2: the long:short edge ratio must be at most 3:1 (got 3.75:1)",
        ),
        (
            "800x800",
            "size 800x800 is not valid for gpt-image-2: total pixels must be between 655,360 and 8,294,400 "
            "(got 640,000; e.g. 1024x640 .. 3840x2160)",
        ),
        (
            "3840x2176",
            "size 3840x2176 is not valid for gpt-image-2: total pixels must be between 655,360 and 8,294,400 "
            "(got 8,355,840; e.g. 1024x640 .. 3840x2160)",
        ),
        ("1024", "size '1024' is not WIDTHxHEIGHT (e.g. 1024x1024)"),
        ("0x0", "size 0x0 is not valid for gpt-image-2: both edges must be positive"),
    ],
)
def test_each_broken_size_rule_is_named(size: str, message: str):
    with pytest.raises(UserError) as info:
        validate_size("gpt-image-2", size)
    assert str(info.value) == message


def test_valid_sizes_pass():
    for size in ("auto", "1024x640", "3840x2160", "2160x3840", "3072x1024", "2880x2880"):
        validate_size("gpt-image-2", size)
        validate_size("gpt-image-2.6-sunburst", size)
    for size in ("1024x1024", "1536x1024", "1024x1536", "auto"):
        validate_size("gpt-image-1", size)


def test_older_models_only_take_three_sizes():
    with pytest.raises(UserError) as info:
        validate_size("gpt-image-1.5", "2048x2048")
    assert str(info.value) == (
        "size 2048x2048 is not valid for gpt-image-1.5: it accepts only 1024x1024, 1536x1024, 1024x1536, auto"
    )


def test_unknown_model_suggests_closest_names_on_one_line():
    with pytest.raises(UserError) as info:
        validate_size("gpt-image-2.6-sunbrust", "1024x1024")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("unknown model 'gpt-image-2.6-sunbrust'; did you mean gpt-image-2.6-sunburst")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be from 1 to 10 (got 0); the API makes 1 to 10 images per request"),
        ({"n": 11}, "n must be from 1 to 10 (got 11); the API makes 1 to 10 images per request"),
        ({"partial_images": 4}, "partial_images must be from 0 to 3 (got 4); the API streams 0 to 3 partial images"),
        ({"input_images": ("1024x1024",) * 17}, "at most 16 input images per request (got 17)"),
        ({"quality": "ultra"}, "quality 'ultra' is not valid for gpt-image-2: use one of low, medium, high, auto"),
        ({"quality": "xhigh"}, "quality 'xhigh' is not valid for gpt-image-2: use one of low, medium, high, auto"),
        (
            {"input_fidelity": "high"},
            "gpt-image-2 takes no input_fidelity (it always reads inputs at high fidelity); omit it",
        ),
    ],
)
def test_request_limits(books: PriceBooks, kwargs: dict, message: str):
    with pytest.raises(UserError) as info:
        estimate(EstimateRequest(model="gpt-image-2", size="1024x1024", **kwargs), books, on=ON)
    assert str(info.value) == message


def test_xhigh_is_known_for_2_5_but_not_estimable(books: PriceBooks):
    with pytest.raises(UserError) as info:
        est(books, "gpt-image-2.5-flare", "1024x1024", "xhigh")
    assert str(info.value) == (
        "quality 'xhigh' is accepted by gpt-image-2.5-flare but no token count is published for it; "
        "use --quality high for a lower bound"
    )


def test_mini_takes_only_low_fidelity(books: PriceBooks):
    with pytest.raises(UserError, match="input_fidelity 'high' is not valid for gpt-image-1-mini: use low"):
        est(books, "gpt-image-1-mini", "1024x1024", "low", input_images=("1024x1024",), input_fidelity="high")


# --- partial images, n, auto ---------------------------------------------------------------------


def test_partial_images_add_100_output_tokens_each(books: PriceBooks):
    for partials in range(4):
        result = est(books, "gpt-image-2", "1024x1024", "low", partial_images=partials)
        assert result.output_tokens.expected == 196 + 100 * partials
        assert result.official_usd.expected == pytest.approx((196 + 100 * partials) * 30 / 1e6)
    notes = est(books, "gpt-image-2", "1024x1024", "low", partial_images=2).notes
    assert any("per request or per image is not confirmed" in note for note in notes)


def test_partials_counted_once_per_request_with_n(books: PriceBooks):
    # n=3 images of 1756 tokens + 2 partials x 100 = 5468 tokens; x $30/1M = $0.16404
    result = est(books, "gpt-image-2", "1024x1024", "medium", n=3, partial_images=2)
    assert result.output_tokens.expected == 3 * 1756 + 200
    assert result.official_usd.expected == pytest.approx(5468 * 30 / 1e6)


def test_auto_size_spans_all_valid_sizes(books: PriceBooks):
    result = est(books, "gpt-image-2", "auto", "high")
    # low: the fewest high-quality tokens of any valid size; expected: 1024x1024; high: §5.7 worst case
    low = min(output_tokens("gpt-image-2", "3072x1024", "high"), output_token_range("gpt-image-2", "auto", "high").low)
    assert (result.output_tokens.low, result.output_tokens.expected, result.output_tokens.high) == (low, 7024, 23719)
    assert result.official_usd.high == pytest.approx(23719 * 30 / 1e6)  # about $0.712
    assert any("expected assumes 1024x1024" in note for note in result.notes)


def test_auto_quality_expected_is_medium(books: PriceBooks):
    result = est(books, "gpt-image-2", "1536x1024", "auto")
    assert (result.output_tokens.low, result.output_tokens.expected, result.output_tokens.high) == (158, 1372, 5488)
    assert any("expected assumes medium" in note for note in result.notes)


def test_auto_both_for_gpt_image_2_and_older(books: PriceBooks):
    both = est(books, "gpt-image-2", "auto", "auto").output_tokens
    assert (both.expected, both.high) == (1756, 23719)
    older = est(books, "gpt-image-1", "auto", "auto").output_tokens
    # the table: min 272 (1024x1024 low), expected 1056 (1024x1024 medium), max 6240 (1024x1536 high)
    assert (older.low, older.expected, older.high) == (272, 1056, 6240)
    assert output_token_range("gpt-image-1.5", "auto", "high") == TokenRange(4160, 4160, 6240)


# --- input images and prompt -----------------------------------------------------------------------


def test_gpt_image_1_input_image_formula(books: PriceBooks):
    # 1024x1024 -> 512x512: 1 tile -> 65 + 129 = 194 (reference §2.4 forum example); high fidelity +4160
    square = est(books, "gpt-image-1", "1024x1024", "low", input_images=("1024x1024",)).tokens["image_input"]
    assert (square.low, square.expected, square.high) == (194, 194, 194 + 4160)
    # 1536x1024 -> 768x512: 2 tiles -> 65 + 258 = 323; high fidelity adds 6240 (non-square)
    wide = est(books, "gpt-image-1", "1024x1024", "low", input_images=("1536x1024",), input_fidelity="high")
    assert wide.tokens["image_input"].expected == 323 + 6240
    # cost: 272 out x $40/1M + 6563 in x $10/1M
    assert wide.official_usd.expected == pytest.approx(272 * 40 / 1e6 + 6563 * 10 / 1e6)


def test_gpt_image_2_input_images_use_a_wide_default(books: PriceBooks):
    result = est(books, "gpt-image-2", "1024x1024", "medium", input_images=("1024x1024", "1024x1024"))
    # per image: low 194, expected 194 + 4160 = 4354, high 2 x 4354 = 8708; two images
    image_input = result.tokens["image_input"]
    assert (image_input.low, image_input.expected, image_input.high) == (388, 8708, 17416)
    assert result.official_usd.expected == pytest.approx(1756 * 30 / 1e6 + 8708 * 8 / 1e6)
    assert any("has no published formula" in note for note in result.notes)


def test_prompt_tokens_four_chars_per_token_plus_minus_half(books: PriceBooks):
    result = est(books, "gpt-image-2", "1024x1024", "low", prompt_chars=400)
    text = result.tokens["text_input"]
    assert (text.low, text.expected, text.high) == (50, 100, 150)
    # 196 out x $30/1M + 100 text x $5/1M
    assert result.official_usd.expected == pytest.approx(196 * 30 / 1e6 + 100 * 5 / 1e6)
    assert any("~4 characters per token, range ±50 %" in note for note in result.notes)


# --- missing rates, snapshots, shutdowns, tool default -------------------------------------------------


def test_missing_official_rate_is_none_not_zero(books: PriceBooks):
    result = est(books, "gpt-image-2.6-flare", "1024x1024", "high")
    assert result.official_usd is None
    assert result.output_tokens.expected == 7024
    assert any("no standard image_output rate for gpt-image-2.6-flare" in note for note in result.notes)


def test_snapshot_without_own_rate_is_priced_as_its_alias():
    rate = OfficialRate(
        model="gpt-image-2", token_class="image_output", tier="standard", usd_per_1m=30.0,
        effective_from=date(2026, 4, 21), effective_to=None, source_url="https://example.test",
        checked_on=ON, notes=None, book_file="test",
    )  # fmt: skip
    only_alias = PriceBooks(official_rates=[rate], contracts=[], fx_rates=[], version="test")
    result = estimate(EstimateRequest("gpt-image-2-2026-04-21", "1024x1024", "high"), only_alias, on=ON)
    assert result.official_usd.expected == pytest.approx(7024 * 30 / 1e6)
    assert any("priced as gpt-image-2" in note for note in result.notes)


def test_shutdown_dates_are_notes(books: PriceBooks):
    assert "gpt-image-1 was shut down on 2026-10-23: this request would fail" in est(books, "gpt-image-1").notes
    assert "gpt-image-1.5 shuts down on 2026-12-01" in est(books, "gpt-image-1.5").notes


def test_default_tool_model_comes_from_models_toml():
    assert default_tool_model() == "gpt-image-2.6-sunburst"


# --- model facts ----------------------------------------------------------------------------------


def test_models_toml_lists_every_model_with_its_token_model():
    expected = {
        "gpt-image-2": "gpt_image_2_calculator",
        "gpt-image-2-2026-04-21": "gpt_image_2_calculator",
        "gpt-image-1.5": "token_table",
        "gpt-image-1": "token_table",
        "gpt-image-1-mini": "token_table",
        "gpt-image-2.5-sunburst": "gpt_image_2_calculator",
        "gpt-image-2.5-sunburst-2026-09-08": "gpt_image_2_calculator",
        "gpt-image-2.5-flare": "gpt_image_2_calculator",
        "gpt-image-2.5-flare-2026-09-08": "gpt_image_2_calculator",
        "gpt-image-2.6-sunburst": "gpt_image_2_calculator",
        "gpt-image-2.6-flare": "gpt_image_2_calculator",
    }
    assert {name: model_facts(name).output_tokens.kind for name in expected} == expected
    assert model_facts("gpt-image-1").input_image_tokens.kind == "tiles"
    assert model_facts("gpt-image-2").input_image_tokens.kind == "empirical_default"
    assert model_facts(default_tool_model()).family_name == "gpt-image-2"
