"""Zero-code and no-provider setups, in subprocesses: the spans reach the spool with no tracing code in the app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from collector import semconv as sc
from simulator import Simulator
from tests.fixtures.simulator import FAKE_API_KEY

VENV_BIN = Path(sys.executable).parent
APP = """
import os, openai
client = openai.OpenAI(api_key=os.environ["APP_API_KEY"], base_url=os.environ["APP_BASE_URL"])
client.images.generate(model="gpt-image-2", prompt="a zero-code lighthouse", size="1024x1024", quality="medium")
"""
# The same app, instrumented in code but with no tracer provider of its own.
APP_WITH_INSTRUMENT = "import collector\ncollector.instrument()\n" + APP


def spool_spans(spool: Path) -> list[dict[str, Any]]:
    """Every span in the spool's OTLP/JSON lines files (sealed or still open)."""
    spans = []
    for path in sorted(spool.glob("*.jsonl*")):
        for line in path.read_text().splitlines():
            for rs in json.loads(line).get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    spans.extend(ss.get("spans", []))
    return spans


def attribute(span: dict[str, Any], key: str) -> Any:
    for item in span.get("attributes", []):
        if item["key"] == key:
            return next(iter(item["value"].values()))
    return None


def run(args: list[str], cwd: Path, sim: Simulator, **env: str) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGECOST_", "OTEL_"))}
    env = {**base, "APP_API_KEY": FAKE_API_KEY, "APP_BASE_URL": sim.base_url, **env}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_opentelemetry_instrument_writes_the_span_to_the_spool(tmp_path: Path, sim: Simulator) -> None:
    (tmp_path / "app.py").write_text(APP)
    spool = tmp_path / "spool"
    # --logs_exporter none too: the distro defaults every signal to OTLP/gRPC, which is not installed.
    args = [str(VENV_BIN / "opentelemetry-instrument"), "--traces_exporter", "none", "--metrics_exporter", "none"]
    args += ["--logs_exporter", "none"]
    run(
        [*args, str(VENV_BIN / "python"), "app.py"],
        tmp_path,
        sim,
        IMAGECOST_SPOOL=str(spool),
        IMAGECOST_ROUTES=f"{sim.host_port}=openai",
        OTEL_SERVICE_NAME="zero-code-app",
    )
    (span,) = spool_spans(spool)
    assert span["name"] == "generate_content gpt-image-2"
    assert attribute(span, sc.ROUTE) == "images.generate"
    assert attribute(span, sc.ROUTE_OWNER) == "openai"
    assert int(attribute(span, sc.USAGE_IMAGE_OUTPUT_TOKENS)) == 1756  # int64 values are JSON strings in OTLP/JSON
    assert (spool / ".prompt_salt").is_file()  # no IMAGECOST_PROMPT_SALT: the per-install salt was created


def test_app_without_a_tracer_provider_gets_the_default_spool(tmp_path: Path, sim: Simulator) -> None:
    (tmp_path / "app.py").write_text(APP_WITH_INSTRUMENT)
    run([str(VENV_BIN / "python"), "app.py"], tmp_path, sim, IMAGECOST_PROMPT_SALT="s")
    (span,) = spool_spans(tmp_path / ".imagecost" / "spool")
    assert attribute(span, sc.ROUTE_OWNER) == "127.0.0.1"  # not in the routes table: the host itself
    assert attribute(span, sc.STATUS) == "ok"
