"""``imagecost estimate``: JSON keys and numbers, one-line errors, plan files (totals and per-line errors)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.db import open_ledger

IMAGECOST = Path(sys.executable).parent / "imagecost"
ON = "2026-11-24"

CNY_CONTRACT = """
[[contract]]
provider = "yuanbao.cn"
contract_id = "yb-per-image"
model_pattern = "gpt-image-2"
unit = "per_image"
price = 0.35
currency = "CNY"
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
def prices_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "prices"
    folder.mkdir()
    (folder / "contracts.toml").write_text(CNY_CONTRACT)
    return folder


def run(*args: str, ledger: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["estimate", "--on", ON, "--ledger", str(ledger), *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_keys_and_numbers(tmp_path: Path, prices_dir: Path):
    code, out, _ = run(
        "--model", "gpt-image-2", "--size", "1024x1024", "--quality", "high", "--n", "2", "--partial-images", "1",
        "--prompt-chars", "400", "--prices-dir", str(prices_dir), "--json",
        ledger=tmp_path / "none.duckdb",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
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
    assert (data["model"], data["size"], data["quality"], data["n"], data["partial_images"]) == (
        "gpt-image-2", "1024x1024", "high", 2, 1,
    )  # fmt: skip
    # 2 images x 7024 + 1 partial x 100 = 14148 image output tokens
    assert data["output_tokens"] == {"low": 14148, "expected": 14148, "high": 14148}
    # 14148 x $30/1M = 0.42444, plus 400 chars / 4 = 100 text tokens (50..150) x $5/1M
    assert data["official_usd"] == {
        "low": round(0.42444 + 50 * 5 / 1e6, 6),
        "expected": round(0.42444 + 100 * 5 / 1e6, 6),
        "high": round(0.42444 + 150 * 5 / 1e6, 6),
    }
    routes = {r["route_owner"]: r for r in data["routes"]}
    assert set(routes) == {"laozhang.ai", "yuanbao.cn"}
    # per_image: 0.35 CNY x 2 images = 0.70 CNY = 0.70 x 0.14 = $0.098
    assert routes["yuanbao.cn"] == {
        "route_owner": "yuanbao.cn",
        "contract_id": "yb-per-image",
        "cost_basis": "per_image",
        "currency": "CNY",
        "amount": {"low": 0.7, "expected": 0.7, "high": 0.7},
        "usd": {"low": 0.098, "expected": 0.098, "high": 0.098},
    }
    # per_call: $0.03 once per request
    assert routes["laozhang.ai"]["amount"] == {"low": 0.03, "expected": 0.03, "high": 0.03}
    assert any("no ledger at" in note for note in data["notes"])


def test_route_filter_and_prompt_text(tmp_path: Path, prices_dir: Path):
    code, out, _ = run(
        "--model", "gpt-image-2", "--size", "1536x1024", "--quality", "low", "--prompt", "x" * 40,
        "--route", "yuanbao.cn", "--prices-dir", str(prices_dir), "--json",
        ledger=tmp_path / "none.duckdb",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert [r["route_owner"] for r in data["routes"]] == ["yuanbao.cn"]
    assert data["prompt_chars"] == 40
    assert data["tokens"]["text_input"] == {"low": 5, "expected": 10, "high": 15}


def test_human_table(tmp_path: Path):
    code, out, _ = run("--model", "gpt-image-2", "--size", "1024x1024", "--quality", "medium", ledger=tmp_path / "x")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "gpt-image-2  size 1024x1024  quality medium  n=1  partial_images=0"
    assert lines[3].split() == ["low", "expected", "high"]
    assert lines[4].split() == ["image", "output", "tokens", "1,756", "1,756", "1,756"]
    # 1756 x $30/1M = $0.05268
    assert lines[7].split()[-3:] == ["0.0527", "0.0527", "0.0527"]
    assert "notes:" in lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "gpt-image-2", "--size", "1000x1000"],
            "Error: size 1000x1000 is not valid for gpt-image-2: both edges must be multiples of 16 (1000 is not); "
            "try 992x992",
        ),
        (
            ["--model", "gpt-image-2.5-sunbrust"],
            "Error: unknown model 'gpt-image-2.5-sunbrust'; did you mean gpt-image-2.5-sunburst, "
            "gpt-image-2.6-sunburst, gpt-image-2.5-sunburst-2026-09-08? (model facts live in ledger/books/models.toml)",
        ),
        (
            ["--model", "gpt-image-2", "--n", "12"],
            "Error: n must be from 1 to 10 (got 12); the API makes 1 to 10 images per request",
        ),
    ],
)
def test_bad_input_is_one_line_on_stderr(tmp_path: Path, args: list[str], message: str):
    code, out, err = run(*args, ledger=tmp_path / "x")
    assert code == 1
    assert out == ""
    assert err.splitlines() == [message]


def test_bad_size_via_the_installed_command(tmp_path: Path):
    proc = subprocess.run(
        [str(IMAGECOST), "estimate", "--model", "gpt-image-2", "--size", "4096x2048", "--ledger", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "Error: size 4096x2048 is not valid for gpt-image-2: the longest edge must be at most 3840 px (got 4096)"
    ]
    assert "Traceback" not in proc.stderr


def test_ledger_calibrates_the_estimate(tmp_path: Path):
    ledger = tmp_path / "ledger.duckdb"
    with open_ledger(ledger) as con:
        for i, tokens in enumerate([1700, 1720, 1740, 1760, 1780, 1800]):
            con.execute(
                "insert into calls (call_id, trace_id, started_at, route, route_owner, requested_model, "
                "size_effective, quality_effective, images_returned, image_output_tokens, usage_source, status) "
                "values (?, 't', now(), 'images.generate', 'openai', 'gpt-image-2', '1024x1024', 'medium', 1, ?, "
                "'reported', 'ok')",
                [f"c{i}", tokens],
            )
    code, out, _ = run("--model", "gpt-image-2", "--size", "1024x1024", "--quality", "medium", "--json", ledger=ledger)
    assert code == 0
    data = json.loads(out)
    # 6 values 1700..1800: p10 = 1710, median = 1750, p90 = 1790 (linear interpolation)
    assert data["output_tokens"] == {"low": 1710, "expected": 1750, "high": 1790}
    assert any("of 6 observed gpt-image-2 1024x1024 medium calls" in note for note in data["notes"])


# --- plan files ------------------------------------------------------------------------------------

PLAN = [
    '{"model": "gpt-image-2", "size": "1024x1024", "quality": "high", "n": 2}',
    '{"model": "gpt-image-2", "size": "1024x1024", "quality": "high", "n": 2}',
    "",
    '{"model": "gpt-image-2", "size": "1000x1000", "quality": "high"}',
    '{"model": "gpt-image-2", "size": "1536x1024", "quality": "low", "prompt_chars": 80}',
    "{not json",
    '{"model": "gpt-image-2", "size": "1536x1024", "quality": "low", "prompt": "' + "y" * 160 + '"}',
    '{"model": "gpt-image-2", "sise": "1024x1024"}',
    '{"model": "gpt-image-1", "size": "1024x1024", "quality": "low", "partial_images": 2}',
    '{"model": "gpt-image-2.6-flare", "size": "1024x1024", "quality": "low"}',
]


BAD_JSON = "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"


@pytest.fixture()
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.jsonl"
    path.write_text("\n".join(PLAN) + "\n")
    return path


def test_plan_totals_and_line_errors(tmp_path: Path, plan_file: Path, prices_dir: Path):
    code, out, _ = run("--plan", str(plan_file), "--prices-dir", str(prices_dir), "--json", ledger=tmp_path / "x")
    assert code == 1  # some lines are bad
    data = json.loads(out)
    assert data["errors"] == [
        {
            "line": 4,
            "error": "size 1000x1000 is not valid for gpt-image-2: both edges must be multiples of 16 (1000 is not); "
            "try 992x992",
        },
        {
            "line": 6,
            "error": "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        },
        {"line": 8, "error": "unknown key 'sise'; did you mean 'size'?"},
    ]
    assert (data["lines"], data["requests"], data["images"], data["errors_total"]) == (9, 6, 8, 3)
    # image output: 2 x (2 x 7024) + 2 x 158 + (272 + 2 x 100) + 196 = 28096 + 316 + 472 + 196
    assert data["output_tokens"] == {"low": 29080, "expected": 29080, "high": 29080}
    # prompts: 80 + 160 characters -> 60 text tokens (30 .. 90)
    assert data["tokens"]["text_input"] == {"low": 30, "expected": 60, "high": 90}
    # official (gpt-image-2.6-flare has no rate: 1 request unpriced, left out):
    #   gpt-image-2: (28096 + 316) x $30/1M + text x $5/1M; gpt-image-1: 472 x $40/1M
    out_usd = 28412 * 30 / 1e6 + 472 * 40 / 1e6
    assert data["official_usd"] == {
        "low": round(out_usd + 30 * 5 / 1e6, 6),
        "expected": round(out_usd + 60 * 5 / 1e6, 6),
        "high": round(out_usd + 90 * 5 / 1e6, 6),
    }
    assert data["official_unpriced_requests"] == 1
    routes = {r["route_owner"]: r for r in data["routes"]}
    # laozhang.ai per call ("gpt-image-2*"): 4 gpt-image-2 requests + 1 gpt-image-2.6-flare = 5 x $0.03
    assert routes["laozhang.ai"]["requests"] == 5
    assert routes["laozhang.ai"]["amount"]["expected"] == pytest.approx(0.15)
    # yuanbao.cn per image (exactly "gpt-image-2"): 2 x 2 + 1 + 1 = 6 images x 0.35 CNY = 2.1 CNY = $0.294
    assert routes["yuanbao.cn"]["requests"] == 4
    assert routes["yuanbao.cn"]["amount"]["expected"] == pytest.approx(2.1)
    assert routes["yuanbao.cn"]["usd"]["expected"] == pytest.approx(2.1 * 0.14)


def test_plan_human_output_prints_line_errors_on_stderr(tmp_path: Path, plan_file: Path):
    code, out, err = run("--plan", str(plan_file), ledger=tmp_path / "x")
    assert code == 1
    assert out.splitlines()[0] == f"plan {plan_file}: 6 requests (4 distinct), 8 images, 3 lines with errors"
    assert err.splitlines() == [
        "line 4: size 1000x1000 is not valid for gpt-image-2: both edges must be multiples of 16 (1000 is not); "
        "try 992x992",
        f"line 6: not valid JSON: {BAD_JSON}",
        "line 8: unknown key 'sise'; did you mean 'size'?",
    ]


def test_plan_equals_the_sum_of_single_estimates(tmp_path: Path, prices_dir: Path):
    # prompt lengths are multiples of 8, so per-line token rounding and the plan's linear sum agree exactly
    requests = [
        {"model": "gpt-image-2", "size": "2048x1152", "quality": "medium", "n": 3, "prompt_chars": 96},
        {"model": "gpt-image-2", "size": "auto", "quality": "auto", "partial_images": 3, "prompt": "z" * 24},
        {"model": "gpt-image-1.5", "size": "1024x1536", "quality": "high", "input_images": ["1536x1024"]},
        {"model": "gpt-image-2", "size": "1024x1024", "quality": "low", "input_images": ["1024x1024"] * 2},
    ]
    lines = [json.dumps(requests[i % 4]) for i in range(41)]
    plan = tmp_path / "sum.jsonl"
    plan.write_text("\n".join(lines))
    code, out, _ = run("--plan", str(plan), "--prices-dir", str(prices_dir), "--json", ledger=tmp_path / "x")
    assert code == 0
    total = json.loads(out)
    expected = {"low": 0.0, "expected": 0.0, "high": 0.0}
    for line in lines:
        req = json.loads(line)
        args = ["--model", req["model"], "--size", req["size"], "--quality", req["quality"]]
        args += ["--n", str(req.get("n", 1)), "--partial-images", str(req.get("partial_images", 0))]
        for image in req.get("input_images", []):
            args += ["--input-image", image]
        if "prompt" in req:
            args += ["--prompt", req["prompt"]]
        if "prompt_chars" in req:
            args += ["--prompt-chars", str(req["prompt_chars"])]
        code, single, _ = run(*args, "--prices-dir", str(prices_dir), "--json", ledger=tmp_path / "x")
        for key in expected:
            expected[key] += json.loads(single)["official_usd"][key]
    for key, value in expected.items():
        assert total["official_usd"][key] == pytest.approx(value, abs=1e-5)
    assert total["requests"] == 41
    assert total["distinct_requests"] == 4


def test_plan_rejects_per_request_options(tmp_path: Path, plan_file: Path):
    code, _, err = run("--plan", str(plan_file), "--model", "gpt-image-2", ledger=tmp_path / "x")
    assert code == 1
    assert err.splitlines() == ["Error: --plan reads each request from the file; drop --model"]
