"""Fuzzing what users type with hypothesis: price-book files, estimator requests, `imagecost` argv.

The contract in each case: it works, or it fails with a one-line ``UserError`` (CLI: exit code 1 or 2 and
no traceback). Any other exception is a bug. Where it works, the result must make sense (prices finite and
non-negative, low <= expected <= high).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ledger.cli import cli
from ledger.errors import UserError
from ledger.estimator import EstimateRequest, Range, estimate, known_models
from ledger.pricebook import load_books
from ledger.pricebook.models import TOKEN_CLASSES
from tests.fixtures.ingest import ListExporter, make_image_span, tracer_for


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no "explain": slow on 3.11
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


_names = itertools.count(1)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the examples write their files (each under a name of its own)."""
    return tmp_path_factory.mktemp("fuzz-inputs")


def one_line_user_error(exc: UserError, *must_name: str) -> None:
    message = str(exc)
    assert message and "\n" not in message, message
    assert all(name in message for name in must_name), message


# --- price-book files -----------------------------------------------------------------------------------------
VALID = {  # one good entry per section; the fuzzer starts from these and breaks a few fields
    "rate": {
        "models": ["gpt-image-fuzz"], "tier": "standard", "usd_per_1m": {"image_output": 30.0, "text_input": 5.0},
        "effective_from": dt.date(2026, 1, 1), "source_url": "https://example.com/pricing",
        "checked_on": dt.date(2026, 11, 1),
    },
    "contract": {
        "provider": "fuzz.gw", "contract_id": "c-1", "model_pattern": "gpt-image-2*", "unit": "per_call",
        "price": 0.03, "currency": "CNY", "charge_failed_calls": False, "effective_from": dt.date(2026, 1, 1),
        "source": "the contract",
    },
    "fx": {"currency": "CNY", "day": dt.date(2026, 11, 2), "usd_per_unit": 0.14, "source": "treasury"},
}  # fmt: skip
# Keeps two good entries of one file apart (else: overlapping windows, a correct error but a dull one).
SEPARATE = {
    "rate": lambda i: {"models": [f"gpt-image-fuzz-{i}"]},
    "contract": lambda i: {"provider": f"fuzz{i}.gw"},
    "fx": lambda i: {"day": dt.date(2026, 11, 2 + i)},
    "prices": lambda i: {},
}
ODD_NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e308]),
    st.floats(),
    st.integers(min_value=-(2**70), max_value=2**70),
)
NUMBERS = {
    "rate": lambda x: {"usd_per_1m": {"image_output": x}},
    "contract": lambda x: {"price": x},
    "fx": lambda x: {"usd_per_unit": x},
}
WORDS = st.sampled_from(
    ["gpt-image-2", "gpt-image-2*", "standard", "batch", "per_call", "per_image", "per_1m_tokens", "USD", "CNY",
     "XXX", "laozhang.ai", "https://example.com", "", " ", *TOKEN_CLASSES]
)  # fmt: skip
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)  # no lone surrogates: not UTF-8
SCALAR = st.one_of(
    WORDS,
    TEXT,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),  # nan and inf included: TOML has them
    st.booleans(),
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(dt.UTC)),
)
VALUE = st.one_of(
    SCALAR,
    st.lists(SCALAR, max_size=3),
    st.dictionaries(st.sampled_from(TOKEN_CLASSES) | st.text(max_size=6), SCALAR, max_size=3),
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # a TOML basic string is a JSON string


def like(value: Any) -> st.SearchStrategy[Any]:
    """Any value of the same type as ``value`` (a price stays a number, but may be nan, inf or negative)."""
    if isinstance(value, bool) or value is None:
        return st.booleans() | st.none()
    if isinstance(value, int | float):
        return st.floats() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    if isinstance(value, dt.date):
        return st.dates()
    if isinstance(value, list):
        return st.lists(WORDS | TEXT, max_size=3)
    if isinstance(value, dict):
        return st.dictionaries(st.sampled_from(TOKEN_CLASSES) | WORDS, st.floats() | st.integers(), max_size=3)
    return WORDS | TEXT


@st.composite
def book_text(draw: st.DrawFn) -> str:
    """TOML-ish text: 1-3 entries, each a good one with 0-3 fields dropped, replaced by any value or added;
    now and then a table instead of an array of tables, an unknown section, or plain junk."""
    if draw(st.sampled_from(range(20))) == 0:  # (integers() would favour 0, the boundary)
        return draw(st.text(max_size=200))
    out = []
    for index in range(draw(st.integers(1, 2))):
        section = draw(st.sampled_from([*VALID, *VALID, *VALID, "prices"]))
        entry = {**VALID.get(section, {"x": 1}), **SEPARATE[section](index)}
        if section in NUMBERS and draw(st.booleans()):  # a good entry with one odd number (nan, inf, < 0, huge)
            entry |= NUMBERS[section](draw(ODD_NUMBERS))
        for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3]))):
            field = draw(st.sampled_from([*entry, "stray"]))
            if draw(st.sampled_from(range(4))) == 0:
                entry.pop(field, None)
            else:
                entry[field] = draw(like(entry.get(field)) | VALUE)
        header = f"[[{section}]]" if draw(st.sampled_from(range(20))) else f"[{section}]"
        out.append(header + "\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in entry.items()))
    return "\n".join(out)


@fuzz(80)
@given(book_text())
def test_fuzzed_price_book_loads_or_names_the_file(scratch: Path, text: str) -> None:
    folder = scratch / f"books-{next(_names)}"
    folder.mkdir()
    path = folder / f"book{next(_names)}.toml"  # a new name each time: the loader caches by path, size, mtime
    path.write_text(text)
    try:
        books = load_books(folder)
    except UserError as exc:
        one_line_user_error(exc, str(path))
        return
    for rate in books.official_rates:
        assert math.isfinite(rate.usd_per_1m) and rate.usd_per_1m >= 0, rate
    for contract in books.contracts:
        assert math.isfinite(contract.price) and contract.price >= 0, contract
    for fx in books.fx_rates:
        assert math.isfinite(fx.usd_per_unit) and fx.usd_per_unit > 0, fx


# --- estimator inputs ------------------------------------------------------------------------------------------
BOOKS = load_books()
ODD = st.one_of(st.none(), st.booleans(), st.floats(), st.text(max_size=5), st.integers())
GOOD_SIZE = st.sampled_from(["auto", "1024x1024", "1536x1024", "1024x1536", "2048x2048", "3840x2160"]) | st.builds(
    lambda w, h: f"{16 * w}x{16 * h}", st.integers(1, 256), st.integers(1, 256)
)
ODD_SIZE = st.one_of(
    st.sampled_from(["AUTO", " 1024x1024 ", "1024X1024", "1000x1000", "0x0", "x", ""]),
    st.builds(lambda w, h: f"{w}x{h}", st.integers(-16, 5000), st.integers(-16, 5000)),
    st.text(max_size=12),
)


def mostly(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` seven times in eight, else ``odd``: most requests are valid but for one or two fields."""
    return st.sampled_from(range(8)).flatmap(lambda k: odd if k == 7 else good)  # hypothesis favours k = 0


@fuzz(300)
@given(
    model=mostly(st.sampled_from(known_models()), st.text(max_size=15) | st.sampled_from(["GPT-IMAGE-2", "dall-e-3"])),
    size=mostly(GOOD_SIZE, ODD_SIZE),
    quality=mostly(st.sampled_from(["low", "medium", "high", "auto"]), st.sampled_from(["HIGH", " medium "]) | TEXT),
    n=mostly(st.integers(1, 10), st.integers(-3, 40) | ODD),
    partial_images=mostly(st.integers(0, 3), st.integers(-3, 40) | ODD),
    input_images=mostly(
        st.lists(GOOD_SIZE.filter(lambda v: v != "auto"), max_size=3), st.lists(ODD_SIZE, max_size=20)
    ).map(tuple),
    prompt_chars=mostly(st.none() | st.integers(0, 32_000), st.integers() | ODD),
    route=mostly(st.sampled_from(["all", "openai", "laozhang.ai"]), st.text(max_size=8)),
    tier=mostly(st.sampled_from(["standard", "batch"]), st.text(max_size=8)),
    input_fidelity=mostly(st.none(), st.sampled_from(["low", "high"]) | st.text(max_size=5)),
    on=mostly(st.dates(dt.date(2025, 1, 1), dt.date(2027, 12, 31)), st.dates()),
)
def test_fuzzed_estimate_is_an_estimate_or_a_user_error(on: dt.date, **fields: Any) -> None:
    try:
        est = estimate(EstimateRequest(**fields), BOOKS, on=on)
    except UserError as exc:
        one_line_user_error(exc)
        return
    ranges: list[Range] = [est.output_tokens, *est.tokens.values()]
    ranges += [r for r in (est.official_usd, *(x for route in est.routes for x in (route.amount, route.usd))) if r]
    for r in ranges:
        assert all(math.isfinite(v) and v >= 0 for v in (r.low, r.expected, r.high)), est
        assert r.low <= r.expected <= r.high, est
    json.dumps(est.to_json())


PLAN_VALUES = {  # good values of each plan key, and odd ones of any JSON type
    "model": st.sampled_from(known_models()),
    "size": GOOD_SIZE,
    "quality": st.sampled_from(["low", "medium", "high", "auto"]),
    "n": st.integers(1, 10),
    "partial_images": st.integers(0, 3),
    "input_images": st.lists(GOOD_SIZE, max_size=3),
    "prompt": st.text(max_size=40),
    "prompt_chars": st.integers(0, 32_000),
    "route": st.sampled_from(["all", "openai", "laozhang.ai"]),
    "tier": st.sampled_from(["standard", "batch"]),
    "output_format": st.sampled_from(["png", "webp"]),
}
JSON_ANY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def plan_line(draw: st.DrawFn) -> str:
    """A request line (mostly good, some keys odd, unknown or missing), or a line that is not one."""
    if draw(st.sampled_from(range(10))) == 0:
        return draw(st.text(st.characters(exclude_categories=["Cs", "Zl", "Zp", "Cc"]), min_size=1))  # one line
    keys = draw(st.lists(st.sampled_from(sorted(PLAN_VALUES)), unique=True, max_size=6))
    line = {"model": draw(PLAN_VALUES["model"])} | {k: draw(mostly(PLAN_VALUES[k], JSON_ANY)) for k in keys}
    if draw(st.sampled_from(range(10))) == 0:
        line[draw(TEXT)] = draw(JSON_ANY)
    return json.dumps(line)  # NaN / Infinity included: not JSON, a line error


@fuzz(60)
@given(st.lists(plan_line(), min_size=1, max_size=20), st.dates(dt.date(2025, 1, 1), dt.date(2027, 12, 31)))
def test_fuzzed_plan_lines_give_totals_and_line_errors(scratch: Path, lines: list[str], on: dt.date) -> None:
    from ledger.estimator.plan import estimate_plan  # polars: imported where used, as the CLI does

    path = scratch / f"plan-{next(_names)}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = estimate_plan(path, BOOKS, on=on)
    written = [line for line in path.read_text().split("\n")[:-1]]
    counted = sum(1 for line in written if line.strip())  # blank lines are skipped, not errors
    assert result.requests + result.errors_total == counted, (result.requests, result.errors)
    assert all("\n" not in reason for _, reason in result.errors)
    assert result.official_usd.low <= result.official_usd.expected <= result.official_usd.high
    json.dumps(result.to_json())


# --- CLI argv ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths worth passing: a real ledger, junk files, a spool, a directory, nothing at all."""
    root = tmp_path_factory.mktemp("fuzz-cli")
    for folder in ("ledgers", "inputs", "prices", "empty"):
        (root / folder).mkdir()
    from collector.spool import SpoolSpanExporter
    from ledger.cli.ledger_cmds import init_ledger

    # Kept apart so that no example can take another's file for a spool file (`ingest --spool DIR` reads
    # and moves every *.jsonl in DIR; a ledger named *.jsonl inside a spool is the one way to lose it there,
    # reported in docs/reliability.md).
    init_ledger(root / "ledgers" / "ledger.duckdb", None)
    (root / "ledgers" / "junk.duckdb").write_bytes(b"not a database\n" * 100)
    (root / "inputs" / "plan.jsonl").write_text('{"model": "gpt-image-2", "size": "1024x1024"}\n{"n": -1}\nnot json\n')
    (root / "prices" / "bad.toml").write_text("[[fx]]\ncurrency = 'CNY'\n")
    exporter = SpoolSpanExporter(root / "spool")
    captured = ListExporter()
    make_image_span(tracer_for(captured))
    exporter.export(captured.spans)
    exporter.shutdown()
    return {
        "ledger": str(root / "ledgers" / "ledger.duckdb"),
        "junk": str(root / "ledgers" / "junk.duckdb"),
        "plan": str(root / "inputs" / "plan.jsonl"),
        "prices": str(root / "prices"),
        "spool": str(root / "spool"),
        "dir": str(root / "empty"),
        "missing": str(root / "missing" / "x"),
    }


COMMANDS = ("estimate", "report", "prices check", "prices", "ingest")
TOKENS = ["", "-", "--", "-1", "0", "1", "3", "11", "99999999999999999999", "1.5", "1024x1024", "1000x1000", "auto",
          "gpt-image-2", "gpt-image-1", "high", "batch", "all", "day", "route_owner", "2026-11-24", "2026-13-45",
          "x" * 300, "ü→✓", "--help"]  # fmt: skip


def options(command: str) -> list[tuple[str, bool]]:
    """(option name, is a flag) of an `imagecost` subcommand, read from click itself."""
    group = click.Context(cli)
    found: click.Command | None = cli
    for word in command.split():
        assert isinstance(found, click.Group)
        found = found.get_command(group, word)
    assert found is not None
    return [(p.opts[0], p.is_flag) for p in found.params if isinstance(p, click.Option)]


@st.composite
def argv(draw: st.DrawFn, places: dict[str, str]) -> list[str]:
    """A subcommand, then some of its options in any order, each with a value worth trying, and now and
    then a stray word."""
    command = draw(st.sampled_from(COMMANDS))
    words = command.split()
    text = st.text(st.characters(exclude_characters="\x00"), max_size=8)  # execve cannot pass a NUL byte
    value = st.sampled_from(TOKENS) | st.sampled_from(sorted(places.values())) | text
    for name, flag in draw(st.lists(st.sampled_from(options(command)), max_size=5)):
        words += [name] if flag else [name, draw(value)]
        if draw(st.integers(0, 5)) == 0:
            words.append(draw(value))
    return words


@fuzz(120)
@given(data=st.data())
def test_fuzzed_cli_arguments_exit_0_1_or_2_without_traceback(
    data: st.DataObject,
    places: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    for name in ("IMAGECOST_LEDGER", "IMAGECOST_PRICES_DIR", "IMAGECOST_SPOOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.getbasetemp())
    words = data.draw(argv(places))
    result = CliRunner().invoke(cli, words)
    shown = shlex.join(["imagecost", *words])
    assert result.exception is None or isinstance(result.exception, SystemExit), (shown, result.exc_info)
    assert result.exit_code in (0, 1, 2), (shown, result.output)
    assert "Traceback" not in result.output, (shown, result.output)
