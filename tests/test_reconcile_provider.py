"""Reconciliation with a provider: an invoice export matched to provider-routed calls, planted mismatches found
exactly. Contract (ledger/books/provider_contracts.toml): laozhang.ai, gpt-image-2*, $0.03 per call, failed
calls not charged (charge_failed_calls = false).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.reconcile import load_mappings, read_invoice
from ledger.reconcile.provider import CALL_COLUMNS, DAY_COLUMNS
from simulator import Simulator
from tests.fixtures.ledger import add_facts, attempt_row, call_row, query
from tests.fixtures.simulator import served_since

PROVIDER = "laozhang.ai"
T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def gateway_call(call_id: str, minutes: float, request_id: str, **overrides: object) -> dict[str, object]:
    return call_row(
        call_id=call_id,
        started_at=at(minutes),
        route_owner=PROVIDER,
        server_address="api.laozhang.ai",
        request_id=request_id,
        **overrides,
    )


@pytest.fixture
def gateway_ledger(ledger_file: Path) -> Path:
    """Seven calls through the gateway on 2026-11-03, 10:00-10:30 UTC."""
    failed = {
        "status": "error",
        "error_type": "image_generation_user_error",
        "error_code": "moderation_blocked",
        "image_output_tokens": None,
        "images_returned": 0,
        "usage_source": "missing",
    }
    calls = [
        gateway_call("c1", 0, "req_1"),
        gateway_call("c2", 5, "req_2"),
        gateway_call("c3", 10, "req_3"),
        gateway_call("c4", 15, "req_4"),
        gateway_call("c5", 20, "req_5", **failed),
        gateway_call("c6", 25, "req_6b", attempt_count=2, retry_reason="provider_5xx"),
        gateway_call("c7", 30, "req_7", **failed),
    ]
    attempts = [
        attempt_row(
            "c6",
            0,
            started_at=at(25),
            status_code=500,
            error_type="server_error",
            error_code=None,
            retry_reason="provider_5xx",
            request_id="req_6a",
        ),
        attempt_row(
            "c6",
            1,
            started_at=at(25),
            status_code=200,
            error_type=None,
            error_code=None,
            retry_reason=None,
            request_id="req_6b",
        ),
    ]
    add_facts(ledger_file, calls=calls, attempts=attempts)
    return ledger_file


def write_invoice(path: Path, lines: list[tuple[datetime, str, str, float]]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["created_at", "request_id", "model", "amount", "currency"])
    for time, request_id, model, amount in lines:
        writer.writerow([time.isoformat(), request_id, model, amount, "USD"])
    path.write_text(out.getvalue())
    return path


PLANTED = [
    (at(0), "req_1", "gpt-image-2", 0.03),  # line 2: matched by request id
    (at(5) + timedelta(seconds=20), "", "gpt-image-2", 0.03),  # line 3: no id, matched by time ± 120 s and model
    (at(10), "req_3", "gpt-image-2", 0.05),  # line 4: amount mismatch (+0.02)
    # c4 (10:15): no line -> missing charge
    (at(20), "req_5", "gpt-image-2", 0.03),  # line 5: c5 failed (moderation) and is charged
    (at(25), "req_6b", "gpt-image-2", 0.03),  # line 6: c6's successful attempt
    (at(25), "req_6a", "gpt-image-2", 0.03),  # line 7: c6's failed (500) attempt, charged
    # c7 (10:30) failed and is not invoiced: as the contract says
    (at(60), "req_unknown", "gpt-image-2", 0.03),  # line 8: no such request, no call within 120 s
]


def test_invoice_with_planted_mismatches(gateway_ledger: Path, tmp_path: Path) -> None:
    invoice = write_invoice(tmp_path / "laozhang-2026-11.csv", PLANTED)
    out = run("reconcile", "provider", str(invoice), "--provider", PROVIDER, "--ledger", str(gateway_ledger), "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(CALL_COLUMNS)
    got = [(r["call_id"], r["invoice_lines"], r["matched_by"], r["owed"], r["invoiced"], r["status"]) for r in rows]
    assert got == [
        ("c1", "2", "request_id", "0.03", "0.03", "matched"),
        ("c2", "3", "time_model", "0.03", "0.03", "matched"),
        ("c3", "4", "request_id", "0.03", "0.05", "amount_mismatch"),
        ("c4", "", "", "0.03", "", "missing_charge"),
        ("c5", "5", "request_id", "0.0", "0.03", "charged_failed_call"),  # failed: 0 charged attempts owed
        ("c6", "6,7", "request_id", "0.03", "0.06", "charged_failed_call"),
        ("c7", "", "", "0.0", "", "matched"),
        ("", "8", "", "", "0.03", "unmatched_invoice_line"),
    ]
    details = {r["call_id"] or r["invoice_lines"]: r["detail"] for r in rows}
    assert details["c6"] == "invoice charges 1 failed attempt(s) although the contract does not charge failed calls"
    assert details["c5"] == (
        "invoice charges a failed call (moderation_blocked) although the contract does not charge failed calls"
    )
    assert details["c7"] == "failed call, not charged (charge_failed_calls = false)"

    days = list(
        csv.DictReader(
            io.StringIO(
                run(
                    "reconcile",
                    "provider",
                    str(invoice),
                    "--provider",
                    PROVIDER,
                    "--ledger",
                    str(gateway_ledger),
                    "--csv",
                    "--days",
                )
            )
        )
    )
    assert list(days[0]) == list(DAY_COLUMNS)
    (day,) = days
    owed = 5 * 0.03  # c1, c2, c3, c4 and c6's one successful attempt
    invoiced = 0.03 + 0.03 + 0.05 + 0.03 + 0.03 + 0.03 + 0.03  # lines 2-8
    assert (day["day"], day["currency"], day["calls"], day["invoice_lines"], day["problems"]) == (
        "2026-11-03",
        "USD",
        "7",
        "7",
        "5",
    )
    assert float(day["owed"]) == pytest.approx(owed)
    assert float(day["invoiced"]) == pytest.approx(invoiced)
    assert float(day["diff"]) == pytest.approx(invoiced - owed)  # 0.08

    # the invoice was imported twice (two runs): stored once
    stored = query(
        gateway_ledger, "select count(*) as n, count(distinct invoice_id) as invoices from provider_invoice_lines"
    )
    assert stored == [{"n": 7, "invoices": 1}]


def test_table_output(gateway_ledger: Path, tmp_path: Path) -> None:
    invoice = write_invoice(tmp_path / "inv.csv", PLANTED)
    out = run("reconcile", "provider", str(invoice), "--provider", PROVIDER, "--ledger", str(gateway_ledger))
    lines = out.splitlines()
    assert lines[0] == f"{PROVIDER} invoice {invoice} (7 lines) vs ledger, 2026-11-03 .. 2026-11-03"
    assert lines[1] == "1 amount_mismatch, 2 charged_failed_call, 3 matched, 1 missing_charge, 1 unmatched_invoice_line"
    assert lines[5].split() == ["2026-11-03", "USD", "7", "7", "0.1500", "0.2300", "0.0800", "5"]
    assert sum(line.startswith("  c") or line.startswith("  line") for line in lines) == 5  # one reason per problem


def test_time_window_respects_model_and_window(gateway_ledger: Path, tmp_path: Path) -> None:
    """A line without an id matches only a call of its model starting within ± match_window_s (120 s)."""
    invoice = write_invoice(
        tmp_path / "inv.csv",
        [
            (at(15) + timedelta(seconds=30), "", "gpt-image-1", 0.03),  # right time for c4, wrong model
            (at(15) + timedelta(seconds=121), "", "gpt-image-2", 0.03),  # right model, 121 s off
            (at(15) + timedelta(seconds=-119), "", "gpt-image-2", 0.03),  # 119 s before c4: matched
        ],
    )
    rows = list(
        csv.DictReader(
            io.StringIO(
                run(
                    "reconcile",
                    "provider",
                    str(invoice),
                    "--provider",
                    PROVIDER,
                    "--ledger",
                    str(gateway_ledger),
                    "--csv",
                )
            )
        )
    )
    by_line = {r["invoice_lines"]: (r["call_id"], r["status"]) for r in rows if r["invoice_lines"]}
    assert by_line == {"2": ("", "unmatched_invoice_line"), "3": ("", "unmatched_invoice_line"), "4": ("c4", "matched")}


def test_json_export_and_mapping_errors(tmp_path: Path) -> None:
    export = tmp_path / "usage.json"
    start = int(T0.timestamp())
    export.write_text(
        json.dumps(
            {
                "data": [
                    {"timestamp": start, "id": "req_a", "model": "gpt-image-2", "cost_cents": 3},
                    {"timestamp": start + 60, "id": "req_b", "model": "gpt-image-2", "cost_cents": 4.5},
                ]
            }
        )
    )
    invoice = read_invoice(export, "example-json-gateway", load_mappings())
    assert [(line.line_number, line.time, line.request_id, line.amount, line.currency) for line in invoice.lines] == [
        (1, T0, "req_a", pytest.approx(0.03), "USD"),
        (2, T0 + timedelta(seconds=60), "req_b", pytest.approx(0.045), "USD"),
    ]

    result = CliRunner().invoke(cli, ["reconcile", "provider", str(export), "--provider", "nobody"])
    assert result.exit_code == 1
    assert result.output.strip().endswith(
        "no invoice column mapping for provider 'nobody' (known: example-json-gateway, laozhang.ai); add a "
        '[provider."nobody"] table to ledger/books/invoice_mappings.toml or pass --mappings FILE'
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("when,request,model,amount\n2026-11-03T10:00:00Z,req_1,gpt-image-2,0.03\n")
    result = CliRunner().invoke(cli, ["reconcile", "provider", str(bad), "--provider", PROVIDER])
    assert result.exit_code == 1
    assert "CSV has no column(s) created_at" in result.output and len(result.output.strip().splitlines()) == 1


def test_dashboard_page_shows_the_stored_invoice(
    gateway_ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    invoice = write_invoice(tmp_path / "inv.csv", PLANTED)
    run("reconcile", "provider", str(invoice), "--provider", PROVIDER, "--ledger", str(gateway_ledger))
    monkeypatch.setenv("IMAGECOST_LEDGER", str(gateway_ledger))
    at = AppTest.from_string(
        "from dashboard.pages_reconcile import render_reconcile_page\nrender_reconcile_page()\n", default_timeout=30
    ).run()
    assert not at.exception
    assert [i.value for i in at.info] == [
        "No OpenAI bill in the ledger yet. Import exported pages with `imagecost reconcile import FILE`, or fetch "
        "them with an admin key: `OPENAI_ADMIN_KEY=... imagecost reconcile fetch --since YYYY-MM-DD`."
    ]
    days, problems = at.dataframe[0].value, at.dataframe[1].value
    (day,) = days.to_dict("records")
    assert str(day.pop("day"))[:10] == "2026-11-03"
    assert day == {
        "currency": "USD",
        "calls": 7,
        "invoice_lines": 7,
        "owed": pytest.approx(0.15),
        "invoiced": pytest.approx(0.23),
        "diff": pytest.approx(0.08),
        "problems": 5,
    }
    assert list(problems["status"]) == [
        "amount_mismatch",
        "missing_charge",
        "charged_failed_call",
        "charged_failed_call",
        "unmatched_invoice_line",
    ]


def test_invoice_in_another_currency_is_compared_through_fx(ledger_factory, tmp_path: Path) -> None:
    """A CNY invoice against the USD contract: converted with the FX book, else flagged no_fx_rate."""
    from tests.fixtures.ledger import write_book

    prices = tmp_path / "prices"
    write_book(
        prices,
        "fx.toml",
        '[[fx]]\ncurrency = "CNY"\nday = 2026-11-01\nusd_per_unit = 0.14\nsource = "test treasury rate"\n',
    )
    with_fx, without_fx = ledger_factory(prices, name="fx.duckdb"), ledger_factory(name="nofx.duckdb")
    for ledger in (with_fx, without_fx):
        add_facts(ledger, calls=[gateway_call("k1", 0, "req_k1"), gateway_call("k2", 5, "req_k2")])
    invoice = tmp_path / "cny.csv"
    # 0.2143 CNY × 0.14 = 0.030002 USD (within the 0.0001 tolerance); 0.25 CNY × 0.14 = 0.035 USD
    invoice.write_text(
        "created_at,request_id,model,amount,currency\n"
        f"{at(0).isoformat()},req_k1,gpt-image-2,0.2143,CNY\n"
        f"{at(5).isoformat()},req_k2,gpt-image-2,0.25,CNY\n"
    )
    args = ["reconcile", "provider", str(invoice), "--provider", PROVIDER, "--csv"]
    rows = list(csv.DictReader(io.StringIO(run(*args, "--ledger", str(with_fx), "--prices-dir", str(prices)))))
    assert [(r["call_id"], r["currency"], r["status"]) for r in rows] == [
        ("k1", "USD", "matched"),
        ("k2", "USD", "amount_mismatch"),
    ]
    assert float(rows[0]["invoiced"]) == pytest.approx(0.2143 * 0.14)
    assert float(rows[1]["diff"]) == pytest.approx(0.25 * 0.14 - 0.03)
    rows = list(csv.DictReader(io.StringIO(run(*args, "--ledger", str(without_fx)))))
    assert [(r["call_id"], r["status"]) for r in rows] == [("k1", "no_fx_rate"), ("k2", "no_fx_rate")]


def test_real_gateway_traffic_against_the_gateways_own_usage_log(
    gateway_sim: Simulator, ledger_file: Path, tmp_path: Path, otel: Any, clean_env: None
) -> None:
    """The real SDK through the collector to the gateway simulator (spool -> ingest); the invoice is the gateway's
    own log of what it served (request ids, times, models), $0.03 a request, with mismatches planted in it."""
    import openai

    import collector
    from collector.telemetry import flush
    from ledger.ingest import ingest_paths

    mark = len(gateway_sim.served)
    spool = tmp_path / "spool"
    client = openai.OpenAI(api_key="sk-test-not-a-real-key", base_url=gateway_sim.base_url, max_retries=0)
    collector.instrument(
        client,
        routes={gateway_sim.host_port: PROVIDER},
        spool=spool,
        image_store=tmp_path / "i",
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    )
    try:
        for i in range(5):
            fault = {"X-Sim-Fault": "moderation_output"} if i == 3 else {}
            try:
                client.images.generate(
                    model="gpt-image-2",
                    prompt=f"gateway call {i}",
                    size="1024x1024",
                    quality="low",
                    extra_headers=fault,
                )
            except openai.BadRequestError:
                assert i == 3
    finally:
        collector.uninstrument()
    flush()
    assert ingest_paths(ledger_file, [spool]).calls_added == 5
    served = served_since(gateway_sim, mark, 5)
    assert [r["status_code"] for r in served] == [200, 200, 200, 400, 200]

    lines = [(r["time"], r["request_id"], r["requested_model"], 0.03) for r in served]
    lines[1] = (*lines[1][:3], 0.04)  # an amount that does not match the contract
    del lines[2]  # a call the gateway forgot to invoice
    lines.append((served[0]["time"] + timedelta(hours=2), "req_not_ours", "gpt-image-2", 0.03))  # not our traffic
    invoice = write_invoice(tmp_path / "gateway.csv", lines)
    rows = list(
        csv.DictReader(
            io.StringIO(
                run(
                    "reconcile", "provider", str(invoice), "--provider", PROVIDER, "--ledger", str(ledger_file), "--csv"
                )
            )
        )
    )
    by_request = {r["request_id"]: (r["matched_by"], r["owed"], r["invoiced"], r["status"]) for r in rows}
    ids = [r["request_id"] for r in served]
    assert by_request == {
        ids[0]: ("request_id", "0.03", "0.03", "matched"),
        ids[1]: ("request_id", "0.03", "0.04", "amount_mismatch"),
        ids[2]: ("", "0.03", "", "missing_charge"),
        ids[3]: ("request_id", "0.0", "0.03", "charged_failed_call"),  # moderation-blocked: nothing owed
        ids[4]: ("request_id", "0.03", "0.03", "matched"),
        "req_not_ours": ("", "", "0.03", "unmatched_invoice_line"),
    }
