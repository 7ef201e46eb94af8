"""Estimator throughput: plan files of a million lines, single estimates, the CLI process.

    .venv/bin/python benchmarks/bench_estimate.py [--lines 1000000] [--single 20000]

Writes the plan files to benchmarks/out/ (git-ignored) and prints one table; "CPU s" is this process's CPU
time (all threads) plus its children's, which a busy machine does not stretch the way it stretches wall time.
Rows:
  plan mixed       realistic mixed requests (models, sizes, qualities, n, partials, input images); 90 % of the
                   lines carry a prompt (as prompt_chars or as plain text); 0.05 % are broken
  plan escaped     the same shapes, every line with a prompt full of JSON escapes (Chinese words and an emoji
                   written as \\uXXXX by json.dumps, newlines as \\n)
  line by line     the baseline without grouping: each line of the mixed plan parsed and estimated on its own
  estimate()       one request at a time, 4 request shapes
  output_tokens()  the gpt-image-2 calculator alone
  process          `imagecost estimate ... --json` as a whole process, 5 runs
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.errors import UserError  # noqa: E402
from ledger.estimator import EstimateRequest, estimate, output_tokens  # noqa: E402
from ledger.estimator.plan import PlanResult, estimate_plan  # noqa: E402
from ledger.estimator.plan_lines import decode, parse_request  # noqa: E402
from ledger.pricebook import PriceBooks, load_books  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
ON = date(2026, 11, 24)

MODELS = [  # (model, weight, sizes)
    ("gpt-image-2", 60, ["1024x1024", "1536x1024", "1024x1536", "2048x2048", "2048x1152", "3840x2160", "auto"]),
    ("gpt-image-2.6-sunburst", 12, ["1024x1024", "1536x1024", "2560x1440", "auto"]),
    ("gpt-image-2.5-flare", 8, ["1024x1024", "1024x1536", "auto"]),
    ("gpt-image-1.5", 10, ["1024x1024", "1536x1024", "1024x1536", "auto"]),
    ("gpt-image-1-mini", 5, ["1024x1024", "1536x1024"]),
    ("gpt-image-2.6-flare", 5, ["1024x1024", "auto"]),
]
WORDS = ["a", "red", "fox", "in", "fresh", "snow", "studio", "product", "shot", "soft", "light", "wide", "angle",
         "poster", "logo", "clean", "background"]  # fmt: skip
WORDS_ZH = ["一只", "红色", "狐狸", "雪地", "产品", "摄影", "柔光", "海报", "干净", "背景", "🦊"]
BROKEN = [
    '{"model": "gpt-image-2", "size": "1000x1000", "quality": "high"}',
    '{"model": "gpt-image-3", "size": "1024x1024"}',
    '{"model": "gpt-image-2", "size": "1024x1024", "quality": "high"',
]


def _line(rng: random.Random, escaped: bool) -> str:
    if rng.random() < 0.0005:
        return rng.choice(BROKEN)
    model, _, sizes = rng.choices(MODELS, weights=[m[1] for m in MODELS])[0]
    req: dict[str, object] = {
        "model": model,
        "size": rng.choice(sizes),
        "quality": rng.choice(["low", "medium", "medium", "high", "auto"]),
    }
    if rng.random() < 0.3:
        req["n"] = rng.choice([2, 3, 4])
    if rng.random() < 0.2:
        req["partial_images"] = rng.randint(1, 3)
    if rng.random() < 0.15:
        req["input_images"] = rng.choices(["1024x1024", "1536x1024", "2048x2048"], k=rng.randint(1, 3))
    kind = rng.random()
    if escaped:
        req["prompt"] = "\n".join(rng.choices(WORDS_ZH, k=rng.randint(3, 60)))
    elif kind < 0.25:
        req["prompt"] = " ".join(rng.choices(WORDS, k=rng.randint(3, 60)))
    elif kind < 0.9:
        req["prompt_chars"] = rng.randint(20, 1200)
    return json.dumps(req)


def write_plan(path: Path, lines: int, *, escaped: bool, seed: int = 0) -> None:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for _ in range(lines):
            fh.write(_line(rng, escaped) + "\n")


@dataclass
class Row:
    name: str
    items: int
    wall: float
    cpu: float  # this process (all threads) plus child processes
    detail: str


def timed(name: str, items: int, run: Callable[[], object], detail: Callable[[object], str]) -> Row:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu, wall = time.process_time(), time.perf_counter()
    result = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return Row(name, items, wall, cpu, detail(result))


def plan_detail(path: Path) -> Callable[[object], str]:
    def detail(result: object) -> str:
        assert isinstance(result, PlanResult)
        phases = ", ".join(f"{phase} {s:.1f}s" for phase, s in result.seconds.items())
        return (
            f"{path.stat().st_size / 1e6:.0f} MB, {result.distinct_requests:,} distinct requests, "
            f"{result.errors_total:,} bad lines; {phases}"
        )

    return detail


def per_line(path: Path, books: PriceBooks, lines: int) -> int:
    """The baseline without grouping: parse and estimate each line on its own."""
    done = 0
    with path.open() as fh:
        for _, text in zip(range(lines), fh, strict=False):
            try:
                req, chars = parse_request(decode(text), route="all", tier="standard")
                estimate(replace(req, prompt_chars=chars), books, on=ON)
                done += 1
            except (UserError, ValueError):
                pass
    return done


SINGLE_REQUESTS = [
    EstimateRequest("gpt-image-2", "1024x1024", "high", n=2, prompt_chars=300),
    EstimateRequest("gpt-image-2", "auto", "auto", partial_images=2),
    EstimateRequest("gpt-image-1.5", "1536x1024", "medium", input_images=("1024x1024",)),
    EstimateRequest("gpt-image-2.6-sunburst", "2560x1440", "low", input_images=("2048x2048",) * 3),
]


def single(books: PriceBooks, calls: int) -> None:
    for i in range(calls):
        estimate(SINGLE_REQUESTS[i % len(SINGLE_REQUESTS)], books, on=ON)


def tokens_only(calls: int) -> None:
    sizes = ["1024x1024", "2048x1152", "3840x2160", "1536x864"]
    for i in range(calls):
        output_tokens("gpt-image-2", sizes[i % 4], "high")


def cli(runs: int) -> None:
    """Whole `imagecost estimate` processes (interpreter start, imports, price books, one estimate)."""
    command = [str(ROOT / ".venv" / "bin" / "imagecost"), "estimate", "--model", "gpt-image-2", "--size", "1024x1024",
               "--quality", "high", "--json", "--ledger", str(OUT / "no-ledger.duckdb")]  # fmt: skip
    for _ in range(runs):
        subprocess.run(command, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=20_000)
    args = parser.parse_args()
    books = load_books()
    estimate(EstimateRequest("gpt-image-2", "auto", "auto"), books, on=ON)  # warm caches (auto worst case)

    rows: list[Row] = []
    paths = {}
    for name, escaped in (("mixed", False), ("escaped", True)):
        paths[name] = path = OUT / f"plan_{name}_{args.lines}.jsonl"
        write_plan(path, args.lines, escaped=escaped)
        run = partial(estimate_plan, path, books, on=ON)
        rows.append(timed(f"plan {name}: estimate_plan", args.lines, run, plan_detail(path)))
    sample = min(args.single, args.lines)
    run_per_line = partial(per_line, paths["mixed"], books, sample)
    rows.append(timed("plan mixed: line by line", sample, run_per_line, lambda n: f"baseline, first {n:,} lines"))
    rows.append(timed("estimate() one request", args.single, partial(single, books, args.single), lambda _: "4 shapes"))
    calls = args.single * 5
    rows.append(timed("output_tokens() gpt-image-2", calls, partial(tokens_only, calls), lambda _: "calculator"))
    rows.append(timed("imagecost estimate process", 5, partial(cli, 5), lambda _: "CLI start to JSON out"))

    base = rows[0].wall / rows[0].items
    print(f"{'benchmark':<32}{'items':>11}{'wall s':>9}{'CPU s':>9}{'items/s':>12}{'wall/item vs row 1':>20}  detail")
    for row in rows:
        ratio = row.wall / row.items / base
        print(
            f"{row.name:<32}{row.items:>11,}{row.wall:>9.2f}{row.cpu:>9.2f}{row.items / row.wall:>12,.0f}"
            f"{ratio:>19,.1f}x  {row.detail}"
        )


if __name__ == "__main__":
    main()
