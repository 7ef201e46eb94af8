"""The budget guard with the real openai SDK against the simulator: block, warn, allow; threads and asyncio.

Dollar figures by hand (packaged official rates, reference §5.1; gpt-image-2 output tokens, §5.4 / §5.7):
gpt-image-2 1024x1024 high makes 7024 image output tokens at $30 / 1M = $0.21072. The prompt "a lighthouse"
has 12 characters: the simulator bills ceil(12 / 4) = 3 text input tokens; the estimator expects 3 and
allows floor(3 x 0.5) = 1 .. ceil(3 x 1.5) = 5 (its ±50 %), at $5 / 1M.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import typing
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

import collector
from collector import semconv as sc
from collector.guard import Action, GuardDecision, GuardOutcome, GuardRequest
from ledger.budgets import Budget, BudgetGuard
from ledger.pricebook import load_books
from simulator import Simulator
from tests.fixtures.collector import Otel, attrs
from tests.fixtures.ledger import add_facts, call_row
from tests.fixtures.simulator import FAKE_API_KEY

PROMPT = "a lighthouse"
HIGH = {"model": "gpt-image-2", "prompt": PROMPT, "size": "1024x1024", "quality": "high"}
IMAGE_OUT = 7024 * 30 / 1e6  # $0.21072 per image
ACTUAL = IMAGE_OUT + 3 * 5 / 1e6  # what one such call costs: $0.210735
EST_HIGH = IMAGE_OUT + 5 * 5 / 1e6  # what a hard budget compares: $0.210745
EST_EXPECTED = ACTUAL  # what a warn budget compares: $0.210735
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
USD = pytest.approx  # float sums: equal to the hand-computed figure to ~1e-12


class Clock:
    """A settable UTC clock for the guard."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def budget(name: str = "b", **fields: Any) -> Budget:
    return Budget(**{"name": name, "period": "day", "limit_usd": 1.0, "mode": "hard", **fields})


GuardFactory = Callable[..., BudgetGuard]


@pytest.fixture
def make_guard() -> GuardFactory:
    """``make_guard(*budgets, ledger=None, clock=Clock())``: a guard over the packaged price books."""

    def make(*budgets: Budget, ledger: Path | None = None, clock: Clock | None = None) -> BudgetGuard:
        return BudgetGuard(list(budgets), load_books(), ledger=ledger, clock=clock or Clock())

    return make


@pytest.fixture
def connect(otel: Otel, sim: Simulator, gateway_sim: Simulator, clean_env: None) -> Iterator[Callable[..., Any]]:
    """``connect(guard, server=sim, client_class=openai.OpenAI)``: a fresh SDK client guarded by ``guard``."""

    def make(guard: collector.Guard, server: Simulator | None = None, client_class: type = openai.OpenAI) -> Any:
        client = client_class(api_key=FAKE_API_KEY, base_url=(server or sim).base_url, max_retries=0)
        collector.instrument(
            client,
            guard=guard,
            routes={sim.host_port: "openai", gateway_sim.host_port: "laozhang.ai"},
            tracer_provider=otel.tracer_provider,
            meter_provider=otel.meter_provider,
        )
        return client

    yield make
    collector.uninstrument()


def guard_attrs(span: Any) -> dict[str, Any]:
    return {k: v for k, v in attrs(span).items() if k.startswith("imagecost.guard.")}


def test_budget_exceeded_is_an_openai_error_but_not_an_api_error() -> None:
    assert issubclass(collector.BudgetExceeded, openai.OpenAIError)
    assert not issubclass(collector.BudgetExceeded, openai.APIError)
    assert collector.BudgetExceeded.__name__ == sc.ERROR_TYPE_BUDGET_EXCEEDED
    assert typing.get_args(Action) == sc.GUARD_DECISIONS


def test_hard_budget_lets_one_call_through_and_blocks_the_next_without_sending_it(
    make_guard: GuardFactory, connect: Callable[..., Any], otel: Otel, sim: Simulator
) -> None:
    # $0.25 allows one call: 0 + 0.210745 <= 0.25, then 0.210735 (its actual cost) + 0.210745 > 0.25.
    guard = make_guard(budget("one-call", limit_usd=0.25))
    client = connect(guard)
    mark = len(sim.served)

    client.images.generate(**HIGH)
    assert guard.spent("one-call") == USD(ACTUAL)
    with pytest.raises(collector.BudgetExceeded) as blocked:
        client.images.generate(**HIGH)

    assert len(sim.served) == mark + 1  # the blocked call never reached the server
    exc = blocked.value
    assert (exc.budget, exc.limit_usd, exc.period) == ("one-call", 0.25, "2026-11-24")
    assert (exc.spent_usd, exc.estimate_usd) == (USD(ACTUAL), USD(EST_HIGH))
    assert str(exc) == (
        "budget 'one-call' would be exceeded in 2026-11-24 (UTC): limit $0.250000, spent $0.210735, "
        "this request's estimate $0.210745; the request was not sent"
    )
    allowed, refused = otel.spans()
    assert guard_attrs(allowed) == {
        sc.GUARD_DECISION: "allow",
        sc.GUARD_BUDGET: "one-call",
        sc.GUARD_ESTIMATE_USD: USD(EST_HIGH),
        sc.GUARD_SPENT_USD: 0.0,
        sc.GUARD_LIMIT_USD: 0.25,
        sc.GUARD_PERIOD: "2026-11-24",
    }
    assert guard_attrs(refused) == {
        sc.GUARD_DECISION: "block",
        sc.GUARD_BUDGET: "one-call",
        sc.GUARD_ESTIMATE_USD: USD(EST_HIGH),
        sc.GUARD_SPENT_USD: USD(ACTUAL),
        sc.GUARD_LIMIT_USD: 0.25,
        sc.GUARD_PERIOD: "2026-11-24",
    }
    # finance sees the blocked attempt: an error span with no HTTP attempt
    blocked_attrs = attrs(refused)
    assert refused.status.status_code is StatusCode.ERROR
    assert blocked_attrs[sc.ERROR_TYPE] == sc.ERROR_TYPE_BUDGET_EXCEEDED
    assert (blocked_attrs[sc.STATUS], blocked_attrs[sc.ATTEMPT_COUNT]) == ("error", 0)
    assert sc.RETRY_REASON not in blocked_attrs


def test_ledger_spend_and_this_process_spend_add_up(
    make_guard: GuardFactory, connect: Callable[..., Any], ledger_file: Path, sim: Simulator
) -> None:
    # In the ledger today: one gpt-image-2 1024x1024 medium call, 81 text + 1756 image output tokens:
    # 81 x $5/1M + 1756 x $30/1M = 0.000405 + 0.05268 = $0.053085. Yesterday's and last month's calls
    # do not count for a day budget.
    today = call_row(started_at=NOW - timedelta(hours=2))
    add_facts(
        ledger_file,
        calls=[
            today,
            call_row(started_at=NOW - timedelta(days=1)),
            call_row(started_at=datetime(2026, 10, 31, tzinfo=UTC)),
        ],
    )
    in_ledger = 81 * 5 / 1e6 + 1756 * 30 / 1e6
    # $0.30: the first call passes (0.053085 + 0.210745 = 0.26383), the second does not
    # (0.053085 + 0.210735 + 0.210745 = 0.474565).
    guard = make_guard(budget("day", limit_usd=0.30), ledger=ledger_file)
    assert guard.spent("day") == USD(in_ledger)
    client = connect(guard)
    mark = len(sim.served)

    client.images.generate(**HIGH)
    with pytest.raises(collector.BudgetExceeded) as blocked:
        client.images.generate(**HIGH)

    assert blocked.value.spent_usd == USD(in_ledger + ACTUAL)
    assert len(sim.served) == mark + 1


def test_an_ingested_call_is_counted_once(
    make_guard: GuardFactory, connect: Callable[..., Any], ledger_file: Path, otel: Otel
) -> None:
    guard = make_guard(budget("day"), ledger=ledger_file)
    connect(guard).images.generate(**HIGH)
    assert guard.spent("day") == USD(ACTUAL)

    # The ledger ingests that very call (its span id is the ledger's call_id), here with 81 text input tokens
    # so its figure differs from ours: 81 x $5/1M + 7024 x $30/1M = $0.211125. It replaces ours; no double count.
    call_id = f"{otel.span().context.span_id:016x}"
    row = call_row(call_id=call_id, started_at=NOW, quality_effective="high", image_output_tokens=7024)
    add_facts(ledger_file, calls=[row])
    guard.refresh()
    assert guard.spent("day") == USD(81 * 5 / 1e6 + IMAGE_OUT)


def test_warn_only_budget_logs_once_and_lets_calls_through(
    make_guard: GuardFactory, connect: Callable[..., Any], otel: Otel, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    guard = make_guard(budget("watch", limit_usd=0.10, mode="warn"))
    client = connect(guard)
    mark = len(sim.served)

    with caplog.at_level(logging.WARNING, logger="imagecost.budgets"):
        for _ in range(3):
            client.images.generate(**HIGH)

    assert len(sim.served) == mark + 3
    warnings = [r.getMessage() for r in caplog.records if r.name == "imagecost.budgets"]
    assert warnings == [
        "imagecost budget 'watch' (warn-only, 2026-11-24 UTC, all calls): spent $0.000000 + this request's "
        "estimate $0.210735 is over the limit $0.100000; the call goes ahead (logged once per period)"
    ]
    # every decision is on its span; a warn budget compares the expected estimate
    spent = [guard_attrs(span)[sc.GUARD_SPENT_USD] for span in otel.spans()]
    assert [guard_attrs(span)[sc.GUARD_DECISION] for span in otel.spans()] == ["warn", "warn", "warn"]
    assert spent == [0.0, USD(ACTUAL), USD(2 * ACTUAL)]
    assert guard_attrs(otel.spans()[0])[sc.GUARD_ESTIMATE_USD] == USD(EST_EXPECTED)


@pytest.mark.parametrize(
    ("scope", "covered", "not_covered", "estimate"),
    [
        # feature tag: tagged hero vs tagged thumbnail; gpt-image-2 high: $0.210745
        ({"tags": {"feature": "hero"}}, {"tags": {"feature": "hero"}}, {"tags": {"feature": "thumbnail"}}, EST_HIGH),
        # route owner: the gateway (its packaged per-call contract, $0.03 a call) vs the OpenAI route
        ({"route_owner": "laozhang.ai"}, {"server": "gateway"}, {"server": "openai"}, 0.03),
        # model glob over the requested model; gpt-image-1.5 low: 272 x $32/1M + 5 x $5/1M = $0.008729
        ({"model": "gpt-image-1.5*"}, {"model": "gpt-image-1.5"}, {"model": "gpt-image-2"}, 272 * 32 / 1e6 + 25 / 1e6),
    ],
    ids=["feature", "route_owner", "model"],
)
def test_budget_scopes(
    make_guard: GuardFactory,
    connect: Callable[..., Any],
    sim: Simulator,
    gateway_sim: Simulator,
    scope: dict[str, Any],
    covered: dict[str, Any],
    not_covered: dict[str, Any],
    estimate: float,
) -> None:
    # $0.005 is less than any one covered call costs
    guard = make_guard(budget("scoped", limit_usd=0.005, **scope))

    def call(how: dict[str, Any]) -> None:
        server = gateway_sim if how.get("server") == "gateway" else sim
        client = connect(guard, server)
        args = {**HIGH, "model": how.get("model", "gpt-image-2")}
        if args["model"] == "gpt-image-1.5":
            args["quality"] = "low"
        with collector.tags(**how.get("tags", {})):
            client.images.generate(**args)

    served = len(sim.served) + len(gateway_sim.served)
    call(not_covered)
    with pytest.raises(collector.BudgetExceeded) as blocked:
        call(covered)
    assert len(sim.served) + len(gateway_sim.served) == served + 1
    assert blocked.value.estimate_usd == USD(estimate)
    assert blocked.value.spent_usd == 0.0  # the call outside the scope did not count


def test_overall_budget_counts_every_route_and_model(
    make_guard: GuardFactory, connect: Callable[..., Any], gateway_sim: Simulator
) -> None:
    guard = make_guard(budget("all", period="month", limit_usd=10.0))
    connect(guard).images.generate(**HIGH)  # $0.210735
    with collector.tags(feature="hero"):
        connect(guard, gateway_sim).images.generate(**HIGH)  # the gateway's contract: $0.03 per call
    connect(guard).images.generate(**{**HIGH, "model": "gpt-image-1.5", "quality": "low"})  # 272x32 + 3x5 per 1M
    assert guard.spent("all") == USD(ACTUAL + 0.03 + (272 * 32 + 3 * 5) / 1e6)


def test_day_and_month_windows_are_utc_periods(
    make_guard: GuardFactory, connect: Callable[..., Any], ledger_file: Path
) -> None:
    # ledger: $0.053085 (the fixture's medium call) on each of 2026-10-31 23:59:59, 2026-11-01 00:00:00,
    # 2026-11-23 23:59:59 and 2026-11-24 00:00:00 UTC.
    one = 81 * 5 / 1e6 + 1756 * 30 / 1e6
    days = [
        datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 24, tzinfo=UTC),
    ]
    add_facts(ledger_file, calls=[call_row(started_at=day) for day in days])
    clock = Clock(NOW)
    guard = make_guard(
        budget("day", period="day", limit_usd=100.0),
        budget("month", period="month", limit_usd=100.0),
        ledger=ledger_file,
        clock=clock,
    )
    assert (guard.spent("day"), guard.spent("month")) == (USD(one), USD(3 * one))

    connect(guard).images.generate(**HIGH)
    assert (guard.spent("day"), guard.spent("month")) == (USD(one + ACTUAL), USD(3 * one + ACTUAL))

    clock.now = datetime(2026, 11, 25, 0, 0, 1, tzinfo=UTC)  # a new UTC day: the day budget starts again
    assert (guard.spent("day"), guard.spent("month")) == (0.0, USD(3 * one + ACTUAL))
    guard.refresh()
    assert (guard.spent("day"), guard.spent("month")) == (0.0, USD(3 * one + ACTUAL))


def test_threads_cannot_slip_past_a_hard_budget_together(
    make_guard: GuardFactory, connect: Callable[..., Any], sim: Simulator
) -> None:
    # $0.70 allows three calls: each reserves its high estimate ($0.210745) before it is sent, so a fourth
    # always sees at least 3 x 0.210735 + 0.210745 = 0.84295 > 0.70.
    guard = make_guard(budget("three", limit_usd=0.70))
    client = connect(guard)
    start = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        start.wait()
        try:
            client.images.generate(**HIGH)
            result = "sent"
        except collector.BudgetExceeded:
            result = "blocked"
        with lock:
            outcomes.append(result)

    mark = len(sim.served)
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["blocked"] * 5 + ["sent"] * 3
    assert len(sim.served) == mark + 3
    assert guard.spent("three") == USD(3 * ACTUAL)


async def test_asyncio_tasks_cannot_slip_past_a_hard_budget_together(
    make_guard: GuardFactory, connect: Callable[..., Any], otel: Otel, sim: Simulator
) -> None:
    guard = make_guard(budget("three", limit_usd=0.70))
    client = connect(guard, client_class=openai.AsyncOpenAI)
    mark = len(sim.served)

    results = await asyncio.gather(*(client.images.generate(**HIGH) for _ in range(6)), return_exceptions=True)

    assert sum(isinstance(r, collector.BudgetExceeded) for r in results) == 3
    assert len(sim.served) == mark + 3
    decisions = sorted(guard_attrs(span)[sc.GUARD_DECISION] for span in otel.spans())
    assert decisions == ["allow"] * 3 + ["block"] * 3
    assert guard.spent("three") == USD(3 * ACTUAL)


def test_streams_and_edits_are_estimated_before_they_are_sent(
    make_guard: GuardFactory, connect: Callable[..., Any], sim: Simulator
) -> None:
    guard = make_guard(budget("tight", limit_usd=0.05))
    client = connect(guard)
    mark = len(sim.served)
    # stream with 2 partial images: (1756 + 2 x 100) image output tokens at $30/1M + 5 x $5/1M = $0.058705
    with pytest.raises(collector.BudgetExceeded) as streamed:
        client.images.generate(**{**HIGH, "quality": "medium"}, stream=True, partial_images=2)
    assert streamed.value.estimate_usd == USD((1756 + 200) * 30 / 1e6 + 5 * 5 / 1e6)
    # an edit with one input image, counted as 1024x1024 (the guard does not read the file). gpt-image-2 has no
    # published input rule (reference §6); the estimator's high bound is 2 x gpt-image-1's high-fidelity count:
    # 1024x1024 scales to 512x512 = 1 tile, 65 + 129 x 1 + 4160 = 4354, x 2 = 8708 tokens at $8/1M;
    # plus 196 low-quality output tokens at $30/1M and 5 text tokens at $5/1M.
    with pytest.raises(collector.BudgetExceeded) as edited:
        client.images.edit(image=b"\x89PNG fake", **{**HIGH, "quality": "low"})
    assert edited.value.estimate_usd == USD(8708 * 8 / 1e6 + 196 * 30 / 1e6 + 5 * 5 / 1e6)
    assert len(sim.served) == mark


class BrokenGuard:
    def check(self, request: GuardRequest) -> GuardDecision:
        raise RuntimeError("bug in the guard")

    def record(self, request: GuardRequest, outcome: GuardOutcome) -> None:
        raise RuntimeError("bug in the guard")


def test_a_broken_guard_never_breaks_the_call(connect: Callable[..., Any], otel: Otel, sim: Simulator) -> None:
    client = connect(BrokenGuard())
    mark = len(sim.served)
    result = client.images.generate(**HIGH)
    assert result.usage.output_tokens == 7024
    assert len(sim.served) == mark + 1
    assert guard_attrs(otel.span()) == {}


def test_instrument_rejects_something_that_is_not_a_guard(clean_env: None) -> None:
    with pytest.raises(TypeError, match="guard must have check"):
        collector.instrument(openai.OpenAI(api_key=FAKE_API_KEY), guard=object())
    collector.uninstrument()
