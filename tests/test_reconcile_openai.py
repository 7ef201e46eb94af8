"""Reconciliation with OpenAI: the simulator's admin endpoints through the real SDK's admin client, the
`imagecost reconcile` commands, and a month of traffic with planted discrepancies found exactly.

Prices (ledger/books/official_rates.toml, gpt-image-2 standard): text input $5/1M, image output $30/1M.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.db import connect
from ledger.reconcile import fetch_pages, load_line_items, read_pages, store_bill
from ledger.reconcile.openai import COST_COLUMNS, IMAGE_COLUMNS
from simulator import Simulator
from tests.fixtures.ledger import add_facts, query
from tests.fixtures.reconcile import FAKE_ADMIN_KEY, Call, admin_client, plant_history, sim_control

MONTH = [date(2026, 10, 1) + timedelta(days=i) for i in range(30)]  # 2026-10-01 .. 2026-10-30
START = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp())
END = int(datetime(2026, 10, 31, tzinfo=UTC).timestamp())


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def month_of_traffic() -> list[Call]:
    """Two calls a day in proj_main, plus the planted discrepancies (see the test's docstring)."""
    calls: list[Call] = []
    for day in MONTH:
        hero = Call(at(day, 10), text_input=20, image_output=1756, project="proj_main")  # 1024x1024 medium
        if day == date(2026, 10, 7):  # the first attempt failed with a 500 after the server did the work
            hero = Call(at(day, 10), 20, 1756, project="proj_main", server_failed_attempts=1)
        if day == date(2026, 10, 15):  # streamed, 3 partials requested, 1 received: usage 1756 + 100
            hero = Call(
                at(day, 10), 20, 1856, project="proj_main", stream=True, partials_requested=3, partials_received=1
            )
        thumb = Call(at(day, 14), text_input=12, image_output=158, size="1536x1024", quality="low")  # untagged
        calls += [hero, thumb]
    # 10-12: an app nobody instrumented, on its own project: three 1024x1024 high images
    calls += [
        Call(at(date(2026, 10, 12), 9 + i), 8, 7024, quality="high", billed_project="proj_shadow", in_ledger=False)
        for i in range(3)
    ]
    # 10-20: a call the ledger recorded for proj_beta that this organization's bill never saw
    calls.append(Call(at(date(2026, 10, 20), 11), 10, 196, quality="low", project="proj_beta", served=False))
    return calls


@pytest.fixture
def month(billing_sim: Simulator, ledger_file: Path) -> Path:
    """The ledger and the simulator's bill for October 2026, with the planted discrepancies."""
    ledger_calls, ledger_attempts = plant_history(billing_sim, month_of_traffic())
    add_facts(ledger_file, calls=ledger_calls, attempts=ledger_attempts)
    sim_control(
        billing_sim,
        "PUT",
        "/_sim/billing",
        {
            # 10-15: partial images billed as requested, not as received
            "partials": "requested",
            # 10-28 on: OpenAI bills image output at $32/1M while our book still says $30/1M
            "rate_overrides": [
                {
                    "model": "gpt-image-2",
                    "token_class": "image_output",
                    "usd_per_1m": 32.0,
                    "effective_from": "2026-10-28",
                }
            ],
        },
    )
    return ledger_file


def test_month_of_traffic_finds_exactly_the_planted_discrepancies(
    month: Path, billing_sim: Simulator, tmp_path: Path
) -> None:
    """Planted: 10-07 a retried 500 billed twice; 10-12 an uninstrumented app (proj_shadow); 10-15 partial
    images billed as requested; 10-20 ledger spend missing from the bill (proj_beta); 10-28..30 a stale
    image-output rate in the book. Every other day × project × line item must match."""
    bill = tmp_path / "bill.json"
    env = {"OPENAI_ADMIN_KEY": FAKE_ADMIN_KEY}
    fetched = run(
        "reconcile",
        "fetch",
        "--since",
        "2026-10-01",
        "--until",
        "2026-10-30",
        "--base-url",
        billing_sim.base_url,
        "--save",
        str(bill),
        "--ledger",
        str(month),
        env=env,
    )
    # costs: proj_main has 2 line items a day (text input, image output) = 60, proj_shadow 2 on 10-12 -> 62;
    # usage: proj_main has 2 sizes a day (1024x1024, 1536x1024) = 60, proj_shadow 1 on 10-12 -> 61
    assert fetched == "fetched 2 pages: 62 cost rows, 61 image usage rows (0 replaced)\n"
    stored = query(month, "select count(*) as n, count(distinct line_item) as items from openai_costs")[0]
    assert stored == {"n": 62, "items": 2}

    # importing the same exported bill again stores every bucket once
    again = run("reconcile", "import", str(bill), "--ledger", str(month))
    assert again == f"{bill}: 62 cost rows, 61 image usage rows (123 replaced)\n"
    assert query(month, "select count(*) as n from openai_costs")[0]["n"] == 62
    assert query(month, "select count(*) as n from openai_image_usage")[0]["n"] == 61

    out = run("reconcile", "--ledger", str(month), "--tolerance", "0.001", "--project", "proj_main", "--csv")
    rows = csv_rows(out)
    assert list(rows[0]) == list(COST_COLUMNS)
    # the per-line pricing of recon_ledger_lines adds up to priced_calls' official cost
    (sums,) = query(
        month,
        "select (select sum(usd) from recon_ledger_lines) as lines, "
        "(select sum(official_cost_usd) from priced_calls where route_owner = 'openai') as calls",
    )
    assert sums["lines"] == pytest.approx(sums["calls"], rel=1e-12)
    problems = {
        (r["day"], r["project"], r["model"], r["token_class"]): (r["status"], r["cause"], float(r["diff_usd"]))
        for r in rows
        if r["status"] != "matched"
    }
    expected = {
        # bill 2 × 1756 + 158 = 3,670 tokens; ledger 1756 + 158 = 1,914: one extra 1756 × $30/1M
        ("2026-10-07", "proj_main", "gpt-image-2", "image_output"): (
            "mismatch",
            "retries_after_server_success",
            1756 * 30 / 1e6,
        ),
        ("2026-10-12", "proj_shadow", "gpt-image-2", "image_output"): (
            "bill_only",
            "not_in_ledger",
            3 * 7024 * 30 / 1e6,
        ),
        ("2026-10-12", "proj_shadow", "gpt-image-2", "text_input"): ("bill_only", "not_in_ledger", 3 * 8 * 5 / 1e6),
        # 2 partials requested and not received, 100 tokens each
        ("2026-10-15", "proj_main", "gpt-image-2", "image_output"): ("mismatch", "partial_images", 200 * 30 / 1e6),
        ("2026-10-20", "proj_beta", "gpt-image-2", "image_output"): (
            "ledger_only",
            "missing_from_bill",
            -196 * 30 / 1e6,
        ),
        ("2026-10-20", "proj_beta", "gpt-image-2", "text_input"): ("ledger_only", "missing_from_bill", -10 * 5 / 1e6),
        **{
            # (1756 + 158) tokens × ($32 - $30)/1M
            (day, "proj_main", "gpt-image-2", "image_output"): ("mismatch", "stale_rate", 1914 * 2 / 1e6)
            for day in ("2026-10-28", "2026-10-29", "2026-10-30")
        },
    }
    assert {k: v[:2] for k, v in problems.items()} == {k: v[:2] for k, v in expected.items()}
    for key, (_, _, diff) in expected.items():
        assert problems[key][2] == pytest.approx(diff, abs=1e-9), key

    # the 10-07 text input also carries the retry (20 tokens, $0.0001) but is within the $0.001 tolerance
    text_0707 = next(r for r in rows if r["day"] == "2026-10-07" and r["token_class"] == "text_input")
    assert (text_0707["status"], float(text_0707["bill_tokens"]), float(text_0707["ledger_tokens"])) == (
        "matched",
        52.0,
        32.0,
    )
    stale = next(r for r in rows if r["day"] == "2026-10-28" and r["token_class"] == "image_output")
    assert "implies $32.0000/1M" in stale["detail"] and "$30.0000/1M" in stale["detail"]

    counts = csv_rows(run("reconcile", "--ledger", str(month), "--project", "proj_main", "--counts", "--csv"))
    assert list(counts[0]) == list(IMAGE_COLUMNS)
    count_problems = {
        (r["day"], r["project"]): (r["status"], r["cause"], r["bill_images"], r["ledger_images"], r["bill_requests"])
        for r in counts
        if r["status"] != "matched"
    }
    assert count_problems == {
        ("2026-10-07", "proj_main"): ("mismatch", "retries_after_server_success", "3", "2", "3"),
        ("2026-10-12", "proj_shadow"): ("bill_only", "not_in_ledger", "3", "", "3"),
        ("2026-10-20", "proj_beta"): ("ledger_only", "missing_from_bill", "", "1", ""),
    }


def test_table_output_names_the_problems(month: Path, billing_sim: Simulator) -> None:
    pages = list(fetch_pages(admin_client(billing_sim), start_time=START, end_time=END))
    con = connect(month)
    try:
        store_bill(con, read_pages(pages, "api"), "api")
    finally:
        con.close()
    out = run("reconcile", "--ledger", str(month), "--tolerance", "0.001", "--project", "proj_main")
    lines = out.splitlines()
    # ledger: proj_main 30 days × (32 text × $5 + 1914 image × $30)/1M, + 100 image tokens on 10-15;
    #         proj_beta (10 × $5 + 196 × $30)/1M
    ledger = 30 * (32 * 5 + 1914 * 30) / 1e6 + 100 * 30 / 1e6 + (10 * 5 + 196 * 30) / 1e6
    # bill: text as the ledger + the 20 retried tokens; images of 27 days at $30 with the retried 1756 and the
    #       100 + 200 partial tokens; 3 days at $32; proj_shadow 3 × (8 × $5 + 7024 × $30)/1M
    bill = (
        (30 * 32 + 20) * 5 / 1e6
        + (27 * 1914 + 1756 + 300) * 30 / 1e6
        + 3 * 1914 * 32 / 1e6
        + 3 * (8 * 5 + 7024 * 30) / 1e6
    )
    assert (round(ledger, 4), round(bill, 4)) == (1.7363, 2.4329)
    assert lines[0] == "OpenAI bill vs ledger, UTC days 2026-10-01 .. 2026-10-30"
    assert (
        lines[1]
        == f"bill ${bill:,.4f}  ledger ${ledger:,.4f}  difference ${bill - ledger:+,.4f}  (tolerance $0.001 per row)"
    )
    # 30 days × 2 lines of proj_main + 2 of proj_shadow + 2 of proj_beta
    assert lines[2] == "64 cost rows: 55 matched, 5 mismatch, 2 bill_only, 2 ledger_only"
    assert lines[4].split() == [
        "day",
        "project",
        "model",
        "token_class",
        "tier",
        "bill_usd",
        "ledger_usd",
        "diff_usd",
        "status",
        "cause",
    ]
    assert lines[6].split() == [
        "2026-10-07",
        "proj_main",
        "gpt-image-2",
        "image_output",
        "standard",
        "0.1101",
        "0.0574",
        "0.0527",
        "mismatch",
        "retries_after_server_success",
    ]
    assert len(lines[6:]) == 9 + 2 + 9  # the 9 problems, a blank line and "why:", one reason each
    assert lines[16] == "why:"


def test_paging_follows_next_page(month: Path, billing_sim: Simulator) -> None:
    """Small pages (7 daily buckets) give the same rows as one big page."""
    client = admin_client(billing_sim)
    small = list(fetch_pages(client, start_time=START, end_time=END, costs_limit=7, images_limit=7))
    big = list(fetch_pages(client, start_time=START, end_time=END))
    assert [len(p["data"]) for p in small] == [7, 7, 7, 7, 2, 7, 7, 7, 7, 2]
    assert [p["has_more"] for p in small] == [True, True, True, True, False] * 2
    assert len(big) == 2
    small_rows, big_rows = read_pages(small, "small"), read_pages(big, "big")
    assert small_rows.costs == big_rows.costs and small_rows.images == big_rows.images


def test_line_item_mapping_is_data(tmp_path: Path) -> None:
    mapping = load_line_items()
    assert mapping.match("gpt-image-2 image, output").__dict__ == {
        "model": "gpt-image-2",
        "token_class": "image_output",
        "tier": "standard",
    }
    assert mapping.match("gpt-image-2-2026-04-21 text, input").__dict__ == {
        "model": "gpt-image-2-2026-04-21",
        "token_class": "text_input",
        "tier": "standard",
    }
    assert mapping.match("gpt-image-2 image, output, batch").__dict__ == {
        "model": "gpt-image-2",
        "token_class": "image_output",
        "tier": "batch",
    }
    assert mapping.match("gpt-5.5, input").__dict__ == {
        "model": "gpt-5.5",
        "token_class": "text_input",
        "tier": "standard",
    }
    assert mapping.match("GPT-Image-2 Image, Output").model == "GPT-Image-2"
    assert mapping.match("input_tokens") is None
    own = tmp_path / "items.toml"
    own.write_text(
        '[[line_item]]\npattern = "Image generation ({model}), output tokens"\ntoken_class = "image_output"\n'
    )
    assert load_line_items(own).match("Image generation (gpt-image-2), output tokens").token_class == "image_output"


def _page(results: list[dict[str, Any]], day: date = date(2026, 11, 3)) -> dict[str, Any]:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    return {
        "object": "page",
        "has_more": False,
        "next_page": None,
        "data": [{"object": "bucket", "start_time": start, "end_time": start + 86400, "results": results}],
    }


def _cost(line_item: str | None, value: float, quantity: float | None, project: str | None = "proj_x") -> dict:
    return {
        "object": "organization.costs.result",
        "amount": {"value": value, "currency": "usd"},
        "line_item": line_item,
        "project_id": project,
        "quantity": quantity,
        "quantity_unit": "tokens" if quantity is not None else None,
    }


def test_exported_bill_batch_tier_unmapped_and_ungrouped(ledger_file: Path, tmp_path: Path) -> None:
    """An exported bill (JSON pages): a batch rate on the bill for calls the ledger priced at standard, a line
    item string the mapping does not know, and a day exported without line items (compared as totals)."""
    from tests.fixtures.ledger import call_row

    day3, day4 = datetime(2026, 11, 3, 10, tzinfo=UTC), datetime(2026, 11, 4, 10, tzinfo=UTC)
    add_facts(
        ledger_file,
        calls=[
            call_row(started_at=day3, text_input_tokens=81, image_output_tokens=1756, tags={"project": "proj_x"}),
            call_row(started_at=day4, text_input_tokens=81, image_output_tokens=1756, tags={"project": "proj_x"}),
        ],
    )
    export = tmp_path / "costs.json"
    export.write_text(
        json.dumps(
            [
                _page(
                    [
                        _cost("gpt-image-2 image, output", 1756 * 15 / 1e6, 1756),  # half price: the Batch rate
                        _cost("gpt-image-2 text, input", 81 * 5 / 1e6, 81),
                        _cost("dall-e-9 pixels", 0.5, 3),
                    ]
                ),
                _page([_cost(None, 1756 * 30 / 1e6 + 81 * 5 / 1e6 + 0.02, None)], date(2026, 11, 4)),
            ]
        )
    )
    assert run("reconcile", "import", str(export), "--ledger", str(ledger_file)) == (
        f"{export}: 4 cost rows, 0 image usage rows (0 replaced)\n"
    )
    rows = csv_rows(run("reconcile", "--ledger", str(ledger_file), "--csv"))
    got = [(r["day"], r["model"], r["token_class"], r["status"], r["cause"]) for r in rows]
    assert got == [
        ("2026-11-03", "gpt-image-2", "image_output", "mismatch", "batch_tier"),
        ("2026-11-03", "gpt-image-2", "text_input", "matched", ""),
        ("2026-11-03", "", "", "unmapped_line_item", "unmapped_line_item"),
        ("2026-11-04", "*", "*", "mismatch", "not_in_ledger"),
    ]
    assert float(rows[0]["diff_usd"]) == pytest.approx(-1756 * 15 / 1e6)
    assert float(rows[3]["diff_usd"]) == pytest.approx(0.02)
    assert rows[2]["line_item"] == "dall-e-9 pixels"


PAGE_SCRIPT = "from dashboard.pages_reconcile import render_reconcile_page\nrender_reconcile_page()\n"


def test_dashboard_page(month: Path, billing_sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page reconciles what the CLI stored, read-only; its inputs change tolerance and project mapping."""
    from streamlit.testing.v1 import AppTest

    run(
        "reconcile",
        "fetch",
        "--since",
        "2026-10-01",
        "--until",
        "2026-10-30",
        "--base-url",
        billing_sim.base_url,
        "--ledger",
        str(month),
        env={"OPENAI_ADMIN_KEY": FAKE_ADMIN_KEY},
    )
    run("reconcile", "--ledger", str(month))  # syncs the line-item map the page reads
    monkeypatch.setenv("IMAGECOST_LEDGER", str(month))
    at = AppTest.from_string(PAGE_SCRIPT, default_timeout=30).run()
    assert not at.exception
    at.text_input(key="recon_tolerance").set_value("0.001")
    at.text_input(key="recon_project").set_value("proj_main").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "Billed by OpenAI": "$2.4329",  # as computed in test_table_output_names_the_problems
        "Ledger, official rates": "$1.7363",
        "Difference": "$0.6966",
        "Rows to look at": "9 of 64",
    }
    problems = at.dataframe[0].value
    assert list(problems["cause"]) == [
        "retries_after_server_success",
        "not_in_ledger",
        "not_in_ledger",
        "partial_images",
        "missing_from_bill",
        "missing_from_bill",
        "stale_rate",
        "stale_rate",
        "stale_rate",
    ]
    # untagged calls now land on project 'default': its 30 × 2 lines are ledger_only, and proj_main's image
    # output misses their 158 tokens a day ($0.00474 > tolerance) while its text input misses 12 tokens
    # ($0.00006, within tolerance): 60 + 30 + the 4 of proj_shadow / proj_beta, of 60 + 60 + 4 rows
    at.text_input(key="recon_project").set_value("").run()
    assert {m.label: m.value for m in at.metric}["Rows to look at"] == "94 of 124"


def test_admin_endpoints_answer_like_the_api(billing_sim: Simulator) -> None:
    """Errors like the API's: no key (401; the SDK refuses to send one), an unknown group_by or too large a
    limit (400, raised by the SDK as BadRequestError with the parameter)."""
    import httpx2
    import openai

    unauthenticated = httpx2.get(f"{billing_sim.base_url}/organization/costs", params={"start_time": START})
    assert unauthenticated.status_code == 401
    admin = admin_client(billing_sim)
    with pytest.raises(openai.BadRequestError) as bad_group:
        admin.admin.organization.usage.costs(start_time=START, group_by=["model"])  # type: ignore[list-item]
    assert bad_group.value.param == "group_by"
    with pytest.raises(openai.BadRequestError) as bad_limit:
        admin.admin.organization.usage.images(start_time=START, end_time=END, limit=32)
    assert (bad_limit.value.param, bad_limit.value.body["message"]) == ("limit", "limit must be between 1 and 31")
    empty = admin.admin.organization.usage.costs(start_time=START, end_time=START + 2 * 86400)
    assert empty.to_dict(mode="json") == {
        "object": "page",
        "has_more": False,
        "next_page": None,
        "data": [
            {"object": "bucket", "start_time": START + d * 86400, "end_time": START + (d + 1) * 86400, "results": []}
            for d in range(2)
        ],
    }


def test_today_real_sdk_through_the_collector_and_an_uninstrumented_app(
    billing_sim: Simulator, ledger_file: Path, tmp_path: Path, otel: Any, clean_env: None
) -> None:
    """Live traffic, no backdating: the real SDK instrumented by the collector (spool -> ingest) and, on the same
    project, a plain client nobody instrumented. A 429 the SDK retried is billed once and matches; the
    uninstrumented call is found on both token lines, with its exact tokens."""
    import openai

    import collector
    from collector.telemetry import flush
    from ledger.ingest import ingest_paths

    spool = tmp_path / "spool"
    app = openai.OpenAI(api_key="sk-test-not-a-real-key", base_url=billing_sim.base_url, project="proj_live")
    collector.instrument(
        app,
        routes={billing_sim.host_port: "openai"},
        spool=spool,
        image_store=tmp_path / "img",
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    )
    try:
        with collector.tags(project="proj_live"):
            app.images.generate(model="gpt-image-2", prompt="x" * 40, size="1024x1024", quality="medium")
            app.images.generate(
                model="gpt-image-2",
                prompt="x" * 40,
                size="1024x1024",
                quality="medium",
                extra_headers={"X-Sim-Fault": "rate_limit:1"},
            )  # 429, retried, then 200
            stream = app.images.generate(
                model="gpt-image-2", prompt="x" * 40, size="1024x1024", quality="low", stream=True, partial_images=2
            )
            assert [event.type for event in stream][-1] == "image_generation.completed"
    finally:
        collector.uninstrument()
    flush()
    plain = openai.OpenAI(api_key="sk-test-not-a-real-key", base_url=billing_sim.base_url, project="proj_live")
    plain.images.generate(model="gpt-image-2", prompt="y" * 400, size="1024x1024", quality="low")

    assert ingest_paths(ledger_file, [spool]).calls_added == 3
    assert sorted(r["attempts"] for r in query(ledger_file, "select attempts from priced_calls")) == [1, 1, 2]
    days = {r["time"].date() for r in billing_sim.served}
    (today,) = days  # (a run across UTC midnight would split the traffic over two days)
    env = {"OPENAI_ADMIN_KEY": FAKE_ADMIN_KEY}
    run(
        "reconcile",
        "fetch",
        "--since",
        str(today),
        "--until",
        str(today),
        "--base-url",
        billing_sim.base_url,
        "--ledger",
        str(ledger_file),
        env=env,
    )
    rows = csv_rows(run("reconcile", "--ledger", str(ledger_file), "--tolerance", "0.0001", "--csv"))
    got = {
        (r["project"], r["token_class"]): (r["status"], r["cause"], r["bill_tokens"], r["ledger_tokens"]) for r in rows
    }
    assert got == {
        # text: 3 instrumented prompts of 40 characters (10 tokens each) + the plain client's 400 (100 tokens)
        ("proj_live", "text_input"): ("mismatch", "not_in_ledger", "130.0", "30"),
        # image output: 1756 + 1756 (the 429 generated nothing) + 196 + 2 partials × 100; + the plain client's 196
        ("proj_live", "image_output"): ("mismatch", "not_in_ledger", "4104.0", "3908"),
    }
    diffs = {r["token_class"]: float(r["diff_usd"]) for r in rows}
    assert diffs == {"text_input": pytest.approx(100 * 5 / 1e6), "image_output": pytest.approx(196 * 30 / 1e6)}
    counts = csv_rows(run("reconcile", "--ledger", str(ledger_file), "--counts", "--csv"))
    assert [
        (r["project"], r["bill_images"], r["ledger_images"], r["bill_requests"], r["ledger_requests"], r["cause"])
        for r in counts
    ] == [("proj_live", "4", "3", "4", "3", "not_in_ledger")]
