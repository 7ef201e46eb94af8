"""Concurrent calls: every call recorded exactly once with its own attempts and tags (threads and asyncio)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import openai

import collector
from collector import semconv as sc
from simulator import Simulator
from tests.fixtures.collector import Otel, attempts, attrs
from tests.fixtures.simulator import FAKE_API_KEY, openai_client

ARGS: dict[str, Any] = {"model": "gpt-image-2", "size": "1024x1024", "quality": "low"}
THREADS, CALLS_PER_THREAD, TASKS = 8, 4, 50


def fault_for(key: str, index: int) -> dict[str, str]:
    """Every third call is rate-limited once, so attempts must land on the right span."""
    return {"X-Sim-Fault": "rate_limit:1:5"} if index % 3 == 0 else {}


def test_threads_and_asyncio_tasks_at_once(instrumented: Otel, sim: Simulator) -> None:
    client = openai_client(sim)
    start = threading.Barrier(THREADS + 1)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        start.wait()
        try:
            for j in range(CALLS_PER_THREAD):
                key = f"thread-{t}-{j}"
                with collector.tags(call=key, worker=f"thread-{t}"):
                    client.images.generate(prompt=key, extra_headers=fault_for(key, j), **ARGS)
        except BaseException as exc:
            errors.append(exc)

    async def tasks() -> None:
        aclient = openai.AsyncOpenAI(api_key=FAKE_API_KEY, base_url=sim.base_url)

        async def one(i: int) -> None:
            key = f"task-{i}"
            with collector.tags(call=key, worker=key):
                await aclient.images.generate(prompt=key, extra_headers=fault_for(key, i), **ARGS)

        start.wait()
        await asyncio.gather(*(one(i) for i in range(TASKS)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    asyncio.run(tasks())
    for thread in threads:
        thread.join()
    assert errors == []

    spans = instrumented.spans()
    expected = {f"thread-{t}-{j}" for t in range(THREADS) for j in range(CALLS_PER_THREAD)}
    expected |= {f"task-{i}" for i in range(TASKS)}
    assert len(spans) == len(expected) == THREADS * CALLS_PER_THREAD + TASKS
    assert len({s.context.span_id for s in spans}) == len(spans)
    assert {attrs(s)[sc.TAG_PREFIX + "call"] for s in spans} == expected
    for span in spans:
        a = attrs(span)
        key, index = a[sc.TAG_PREFIX + "call"], int(a[sc.TAG_PREFIX + "call"].rsplit("-", 1)[1])
        assert a[sc.TAG_PREFIX + "worker"] == (key.rsplit("-", 1)[0] if key.startswith("thread") else key)
        tries = attempts(span)
        assert [t[sc.ATTEMPT_STATUS_CODE] for t in tries] == ([429, 200] if index % 3 == 0 else [200])
        assert a[sc.REQUEST_ID] == tries[-1][sc.ATTEMPT_REQUEST_ID]
        assert a[sc.PROMPT_LENGTH] == len(key)  # the span's request is this call's own
    request_ids = [attrs(s)[sc.REQUEST_ID] for s in spans]
    assert len(set(request_ids)) == len(spans)


def test_tags_nest_and_stay_in_their_thread(instrumented: Otel, sim: Simulator) -> None:
    client = openai_client(sim)

    def worker() -> None:
        with collector.tags(team="other"):
            client.images.generate(prompt="bb", **ARGS)

    with collector.tags(feature="hero", team="growth"):
        with collector.tags(team="catalog", customer="acme"):  # inner keys win, the others merge
            client.images.generate(prompt="a", **ARGS)
        thread = threading.Thread(target=worker)  # a new thread starts without the caller's tags
        thread.start()
        thread.join()
        client.images.generate(prompt="ccc", **ARGS)
    client.images.generate(prompt="dddd", **ARGS)

    by_prompt_length = {
        attrs(s)[sc.PROMPT_LENGTH]: {
            k[len(sc.TAG_PREFIX) :]: v for k, v in attrs(s).items() if k.startswith(sc.TAG_PREFIX)
        }
        for s in instrumented.spans()
    }
    assert by_prompt_length == {
        1: {"feature": "hero", "team": "catalog", "customer": "acme"},
        2: {"team": "other"},
        3: {"feature": "hero", "team": "growth"},
        4: {},
    }


async def test_tags_in_asyncio_tasks(instrumented: Otel, sim: Simulator) -> None:
    client = openai.AsyncOpenAI(api_key=FAKE_API_KEY, base_url=sim.base_url)

    async def call(feature: str) -> None:
        with collector.tags(feature=feature):
            await asyncio.sleep(0)  # interleave the tasks
            await client.images.generate(prompt=feature, **ARGS)

    with collector.tags(team="growth"):  # tasks start with a copy of their creator's context
        await asyncio.gather(call("hero"), call("thumbnail"), call("banner"))
    got = sorted((attrs(s)[sc.TAG_PREFIX + "feature"], attrs(s)[sc.TAG_PREFIX + "team"]) for s in instrumented.spans())
    assert got == [("banner", "growth"), ("hero", "growth"), ("thumbnail", "growth")]
    assert {attrs(s)[sc.PROMPT_LENGTH] for s in instrumented.spans()} == {4, 9, 6}
