"""``imagecost demo``: simulator → instrumented real openai SDK → spool → ledger → dashboard."""

from __future__ import annotations

import shutil
from pathlib import Path

import click


@click.command()
@click.option("--calls", default=300, show_default=True, type=click.IntRange(1, 100_000), help="How many SDK calls.")
@click.option(
    "--dir",
    "root",
    default="imagecost-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the demo keeps its ledger, spool and images (recreated on every run).",
)
@click.option("--no-dashboard", is_flag=True, help="Only fill the ledger; do not start the dashboard.")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535), help="Dashboard port.")
@click.pass_context
def demo(ctx: click.Context, calls: int, root: str, no_dashboard: bool, port: int) -> None:
    """Run realistic image traffic through the instrumented SDK against local simulators, then open the dashboard.

    Needs no network and no API key. Traffic is spread over the last 30 days (the recorded times are
    backdated), mixes generate / edit / streamed partials / Responses calls on an OpenAI route and a
    per-call gateway route (laozhang.ai), and injects one fault of every retry cause.
    """
    from openai import OpenAI
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    import collector
    from collector.spool import SpoolSpanExporter
    from ledger.backup import backups_dir
    from ledger.ingest import ingest_paths
    from simulator import Simulator
    from simulator.demo import API_KEY, BackdatingExporter, Clients, demo_paths, drive

    base = Path(root)
    paths = demo_paths(base)
    for path in paths.values():  # a fresh demo every run; only the demo's own files are removed
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    Path(f"{paths['ledger']}.wal").unlink(missing_ok=True)
    shutil.rmtree(backups_dir(paths["ledger"]), ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)

    provider = TracerProvider(resource=Resource.create({"service.name": "imagecost-demo"}))
    backdater = BackdatingExporter(SpoolSpanExporter(paths["spool"]))
    provider.add_span_processor(BatchSpanProcessor(backdater))
    trace.set_tracer_provider(provider)

    click.echo("Starting the OpenAI simulator and a per-call gateway simulator (laozhang.ai) on loopback…")
    with (
        Simulator(personality="openai", latency_scale=0.01) as official,
        Simulator(
            personality="gateway",
            gateway_name="laozhang.ai",
            model_map={"gpt-image-2": "gpt-image-2-2026-04-21"},
            latency_scale=0.01,
        ) as gateway,
    ):
        collector.instrument(
            routes={official.host_port: "openai", gateway.host_port: "laozhang.ai"},
            image_store=paths["images"],
            retention_days=90,
            tracer_provider=provider,
        )
        clients = Clients(
            openai=OpenAI(api_key=API_KEY, base_url=official.base_url),
            gateway=OpenAI(api_key=API_KEY, base_url=gateway.base_url),
        )
        try:
            with click.progressbar(length=calls, label="Image calls through the instrumented SDK") as bar:
                stats = drive(clients, backdater, calls, progress=bar.update)
        finally:
            provider.shutdown()  # exports the last spans and seals the spool file: ingest moves it to done/
            collector.uninstrument()
    failed = ", ".join(f"{n} {name}" for name, n in sorted(stats.failed.items())) or "none"
    click.echo(f"Calls: {stats.ok} succeeded; failed as injected: {failed}")

    click.echo("Ingesting the spool into the ledger…")
    result = ingest_paths(paths["ledger"], [paths["spool"]])
    click.echo(f"Ledger: {paths['ledger']} ({result.calls_added} calls)")
    click.echo(f"Images: {paths['images']}")
    click.echo(f"Spool:  {paths['spool']}")
    click.echo(f"Try:    imagecost report --ledger {paths['ledger']} --by route_owner")

    if not no_dashboard:
        from dashboard.cli import dashboard

        ctx.invoke(dashboard, ledger=str(paths["ledger"]), port=port)
