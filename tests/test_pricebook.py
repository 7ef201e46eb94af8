"""Price books: the packaged numbers, each validation error as its exact one-line message, user files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.errors import UserError
from ledger.pricebook import load_books
from tests.fixtures.ledger import query, write_book

CONTRACT = """
[[contract]]
provider = "acme"
contract_id = "acme-2026"
model_pattern = "gpt-image-2"
unit = "per_call"
price = 0.04
currency = "EUR"
charge_failed_calls = true
effective_from = 2026-11-01
source = "acme order form 2026-10-28"
"""

RATE = """
[[rate]]
models = ["gpt-5.5"]
tier = "standard"
effective_from = 2026-11-01
source_url = "https://example.test/pricing"
checked_on = 2026-11-20
usd_per_1m = { text_input = 1.25 }
"""


@pytest.fixture
def prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("IMAGECOST_PRICES_DIR", raising=False)
    return tmp_path / "prices"


def error_of(folder: Path) -> str:
    with pytest.raises(UserError) as info:
        load_books(folder)
    return str(info.value)


def test_packaged_official_rates_match_the_reference() -> None:
    books = load_books()
    on = date(2026, 11, 3)
    per_class = {
        "gpt-image-2": (5.00, 1.25, 8.00, 2.00, 30.00),
        "gpt-image-2-2026-04-21": (5.00, 1.25, 8.00, 2.00, 30.00),
        "gpt-image-1.5": (5.00, 1.25, 8.00, 2.00, 32.00),
        "gpt-image-1": (5.00, 1.25, 10.00, 2.50, 40.00),
        "gpt-image-1-mini": (2.00, 0.20, 2.50, 0.25, 8.00),
        "gpt-image-2.5-sunburst": (5.00, 1.25, 8.00, 2.00, 30.00),
        "gpt-image-2.5-flare-2026-09-08": (5.00, 1.25, 8.00, 2.00, 30.00),
        "gpt-image-2.6-sunburst": (5.00, 1.25, 8.00, 2.00, 30.00),
    }
    classes = ("text_input", "cached_text_input", "image_input", "cached_image_input", "image_output")
    for model, expected in per_class.items():
        for token_class, usd in zip(classes, expected, strict=True):
            standard = books.rate(model, token_class, on=on)
            batch = books.rate(model, token_class, tier="batch", on=on)
            assert standard is not None and standard.usd_per_1m == usd, (model, token_class)
            assert batch is not None and batch.usd_per_1m == usd / 2, (model, token_class)  # Batch = half
        # no official text output rate for any image model (reference §5.1): unpriced, never $0
        assert books.rate(model, "text_output", on=on) is None
    gpt_image_2 = books.rate("gpt-image-2", "image_output", on=on)
    assert gpt_image_2 is not None
    assert (gpt_image_2.source_url, gpt_image_2.checked_on) == (
        "https://developers.openai.com/api/docs/pricing",
        date(2026, 9, 5),
    )
    assert books.rate("gpt-image-2", "image_output", on=date(2026, 4, 20)) is None  # before launch
    for unpriced in ("gpt-image-2.6-flare", "gpt-5.4", "gpt-5.5"):
        assert books.rate(unpriced, "text_input", on=on) is None
    shutdown = {r.model: r.notes for r in books.official_rates if r.tier == "standard"}
    assert "Shut down 2026-10-23" in (shutdown["gpt-image-1"] or "")
    assert "Shut down 2026-12-01" in (shutdown["gpt-image-1.5"] or "")
    assert "Shut down 2026-12-01" in (shutdown["gpt-image-1-mini"] or "")


def test_packaged_contract_is_a_vendor_term() -> None:
    books = load_books()
    (contract,) = books.contracts_for("laozhang.ai", "gpt-image-2", on=date(2026, 11, 3))
    assert (contract.unit, contract.price, contract.currency, contract.charge_failed_calls) == (
        "per_call",
        0.03,
        "USD",
        False,
    )
    assert "seed guide" in contract.source
    assert contract.notes is not None and "not an OpenAI price" in contract.notes
    assert books.fx("USD", on=date(2026, 11, 3)) is not None
    assert books.fx("CNY", on=date(2026, 11, 3)) is None  # no FX rate ships with the package


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            CONTRACT.replace('unit = "per_call"', 'unit = "per_second"'),
            "contract #1 (acme gpt-image-2): unknown unit 'per_second' "
            "(expected one of per_call, per_image, per_1m_tokens)",
        ),
        (
            CONTRACT.replace("price = 0.04", "price = -0.04"),
            "contract #1 (acme gpt-image-2): negative price -0.04",
        ),
        (
            CONTRACT.replace('currency = "EUR"', 'currency = "EURO"'),
            "contract #1 (acme gpt-image-2): unknown currency 'EURO' (expected an ISO 4217 code such as USD, EUR, CNY)",
        ),
        (
            CONTRACT.replace('source = "acme order form 2026-10-28"\n', ""),
            "contract #1 (acme gpt-image-2): missing source",
        ),
        (
            CONTRACT.replace('source = "acme order form 2026-10-28"', 'source = "  "'),
            "contract #1 (acme gpt-image-2): missing source",
        ),
        (
            RATE.replace("text_input = 1.25", "audio_input = 1.25"),
            "rate #1 (gpt-5.5 standard): unknown token class 'audio_input' (expected one of text_input, "
            "cached_text_input, image_input, cached_image_input, image_output, text_output)",
        ),
        (
            RATE.replace("text_input = 1.25", "text_input = -1.25"),
            "rate #1 (gpt-5.5 standard): negative price text_input = -1.25",
        ),
        (
            RATE.replace('source_url = "https://example.test/pricing"\n', ""),
            "rate #1 (gpt-5.5 standard): missing source_url",
        ),
        (
            '[[fx]]\ncurrency = "XYZ"\nday = 2026-11-01\nusd_per_unit = 0.1\nsource = "bank"\n',
            "fx #1 (XYZ 2026-11-01): unknown currency 'XYZ' (expected an ISO 4217 code such as USD, EUR, CNY)",
        ),
        (
            '[[fx]]\ncurrency = "CNY"\nday = 2026-11-01\nusd_per_unit = 0.14\n',
            "fx #1 (CNY 2026-11-01): missing source",
        ),
    ],
)
def test_each_bad_entry_fails_with_one_line_naming_file_entry_and_problem(
    prices: Path, text: str, problem: str
) -> None:
    path = write_book(prices, "mine.toml", text)
    assert error_of(prices) == f"{path}: {problem}"


def test_overlapping_windows_for_the_same_key(prices: Path) -> None:
    # a second rate for gpt-5.5 text_input standard starting the same day
    first = write_book(prices, "a.toml", RATE)
    second = write_book(prices, "b.toml", RATE.replace("1.25", "1.50"))
    assert error_of(prices) == (
        f"{second}: rate #1 (gpt-5.5 standard): overlapping windows for gpt-5.5 text_input standard: "
        f"2026-11-01..open overlaps 2026-11-01..open from {first} rate #1 (gpt-5.5 standard)"
    )


def test_closed_window_running_past_the_next_start_overlaps(prices: Path) -> None:
    path = write_book(
        prices,
        "rates.toml",
        RATE.replace("effective_from = 2026-11-01", "effective_from = 2026-11-01\neffective_to = 2026-12-01")
        + RATE.replace("2026-11-01", "2026-11-15"),
    )
    assert error_of(prices) == (
        f"{path}: rate #2 (gpt-5.5 standard): overlapping windows for gpt-5.5 text_input standard: "
        f"2026-11-15..open overlaps 2026-11-01..2026-12-01 from {path} rate #1 (gpt-5.5 standard)"
    )


def test_overlapping_contract_windows_and_fx_days(prices: Path) -> None:
    path = write_book(prices, "c.toml", CONTRACT + CONTRACT)
    assert error_of(prices) == (
        f"{path}: contract #2 (acme gpt-image-2): overlapping windows for acme gpt-image-2 per_call: "
        f"2026-11-01..open overlaps 2026-11-01..open from {path} contract #1 (acme gpt-image-2)"
    )
    path.unlink()
    fx = '[[fx]]\ncurrency = "CNY"\nday = 2026-11-01\nusd_per_unit = 0.14\nsource = "bank"\n'
    path = write_book(prices, "fx.toml", fx + fx)
    assert error_of(prices) == (
        f"{path}: fx #2 (CNY 2026-11-01): overlapping windows: a second CNY rate for 2026-11-01 "
        f"(first in {path} fx #1 (CNY 2026-11-01))"
    )


def test_two_contracts_for_one_provider_and_pattern_at_once(prices: Path) -> None:
    other = CONTRACT.replace("acme-2026", "acme-2026b").replace('unit = "per_call"', 'unit = "per_image"')
    path = write_book(prices, "c.toml", CONTRACT + other)
    assert error_of(prices) == (
        f"{path}: contract #2 (acme gpt-image-2): overlapping windows for acme gpt-image-2: acme-2026b EUR "
        f"2026-11-01..open overlaps acme-2026 EUR 2026-11-01..open from {path} contract #1 (acme gpt-image-2) "
        "(one contract and currency per provider and pattern at a time)"
    )


def test_file_level_problems(prices: Path) -> None:
    path = write_book(prices, "typo.toml", CONTRACT.replace("[[contract]]", "[[contracts]]"))
    assert error_of(prices) == f"{path}: unknown section 'contracts' (expected [[rate]], [[contract]] or [[fx]])"
    path.write_text("[[contract]\n")
    assert error_of(prices).startswith(f"{path}: not valid TOML: ")
    assert "\n" not in error_of(prices)
    path.unlink()
    assert error_of(prices / "missing") == (
        f"prices dir {prices / 'missing'} does not exist; create it or fix --prices-dir / $IMAGECOST_PRICES_DIR"
    )


def test_user_dir_contract_is_added_without_editing_the_package(prices: Path) -> None:
    path = write_book(prices, "acme.toml", CONTRACT)
    packaged = load_books()
    books = load_books(prices)
    assert books.files == [*packaged.files, str(path)]
    assert len(books.contracts) == len(packaged.contracts) + 1
    assert books.version != packaged.version
    (acme,) = books.contracts_for("acme", "gpt-image-2", on=date(2026, 11, 3))
    assert (acme.contract_id, acme.price, acme.currency, acme.charge_failed_calls, acme.book_file) == (
        "acme-2026",
        0.04,
        "EUR",
        True,
        str(path),
    )
    assert books.contracts_for("acme", "gpt-image-2", on=date(2026, 10, 31)) == []  # before its window


def test_load_books_reads_env_and_reloads_changed_files(prices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_book(prices, "acme.toml", CONTRACT)
    monkeypatch.setenv("IMAGECOST_PRICES_DIR", str(prices))
    first = load_books()
    assert load_books() is first  # cached while the files are unchanged
    path.write_text(CONTRACT.replace("price = 0.04", "price = 0.045"))
    second = load_books()
    assert second.version != first.version
    assert [c.price for c in second.contracts if c.provider == "acme"] == [0.045]


def test_sync_to_ledger_only_when_the_version_changes(ledger_file: Path, prices: Path) -> None:
    from ledger.db import connect
    from ledger.pricebook import sync_to_ledger

    con = connect(ledger_file)
    try:
        assert sync_to_ledger(con, load_books()) is False  # the template already holds this version
        write_book(prices, "acme.toml", CONTRACT)
        assert sync_to_ledger(con, load_books(prices)) is True
    finally:
        con.close()
    rows = query(ledger_file, "select provider, contract_id, price, currency from provider_contracts order by 1")
    assert rows == [
        {"provider": "acme", "contract_id": "acme-2026", "price": 0.04, "currency": "EUR"},
        {"provider": "laozhang.ai", "contract_id": "laozhang-gpt-image-2-per-call", "price": 0.03, "currency": "USD"},
    ]
    assert query(ledger_file, "select count(*) as n from official_rates") == [{"n": 100}]
    loads = query(ledger_file, "select version from price_book_loads order by loaded_at")
    assert [r["version"] for r in loads] == [load_books().version, load_books(prices).version]


def test_prices_check_cli(prices: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["prices", "check"])
    assert result.exit_code == 0
    assert result.output == f"ok: 100 rates, 1 contracts, 0 fx rates, version {load_books().version[:12]}\n"
    path = write_book(prices, "bad.toml", CONTRACT.replace("price = 0.04", "price = -0.04"))
    result = runner.invoke(cli, ["prices", "check", "--prices-dir", str(prices)])
    assert result.exit_code == 1
    assert result.output == f"Error: {path}: contract #1 (acme gpt-image-2): negative price -0.04\n"


def test_prices_shows_both_books_apart(prices: Path) -> None:
    write_book(prices, "acme.toml", CONTRACT)
    result = CliRunner().invoke(cli, ["prices", "--prices-dir", str(prices)])
    assert result.exit_code == 0, result.output
    out = result.output
    official = out.index("Official OpenAI rates (USD per 1M tokens")
    contracts = out.index("Provider contracts (vendor terms, in the vendor's currency; not OpenAI prices)")
    fx = out.index("FX rates")
    assert official < contracts < fx
    official_part, contract_part = out[official:contracts], out[contracts:fx]
    assert "gpt-image-2  " in official_part and "laozhang.ai" not in official_part
    assert "https://developers.openai.com/api/docs/pricing" in official_part
    assert "2026-04-21 → open" in official_part
    lines = contract_part.splitlines()
    assert lines[1].split() == [
        "provider",
        "contract",
        "model",
        "pattern",
        "unit",
        "token",
        "class",
        "price",
        "currency",
        "failed",
        "charged",
        "window",
        "source",
    ]
    laozhang = ["laozhang.ai", "laozhang-gpt-image-2-per-call", "gpt-image-2*", "per_call", "–", "0.03", "USD", "no"]
    assert lines[3].split()[:8] == laozhang
    assert lines[4].split()[:8] == ["acme", "acme-2026", "gpt-image-2", "per_call", "–", "0.04", "EUR", "yes"]
    assert "acme order form 2026-10-28" in contract_part
