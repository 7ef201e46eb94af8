"""`imagecost simulate`: run the local OpenAI-compatible simulator until Ctrl-C."""

from __future__ import annotations

import time

import click

from ledger.errors import UserError
from simulator.config import PERSONALITIES
from simulator.faults import FAULT_NAMES
from simulator.server import Simulator


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key or not target:
            raise UserError(f"{what} {value!r} must look like KEY=VALUE")
        pairs[key] = target
    return pairs


@click.command()
@click.option("--port", type=int, default=8765, show_default=True, help="Port on 127.0.0.1 (0 = any free port).")
@click.option("--personality", type=click.Choice(PERSONALITIES), default="openai", show_default=True)
@click.option("--gateway-name", default="laozhang.ai", show_default=True, help="Name in the x-gateway header.")
@click.option("--model-map", "model_map", multiple=True, metavar="REQUESTED=PROVIDER", help="Gateway model mapping.")
@click.option("--missing-usage", is_flag=True, help="Answer without usage objects (a gateway that drops them).")
@click.option(
    "--latency-scale", type=float, default=0.0, show_default=True, help="1 = about real time: 0.3 s + tokens/20,000 s."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the generated pictures.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="SUBSTRING=FAULT[:COUNT[:ARG]]",
    help=f"Inject a fault when the prompt contains SUBSTRING. Faults: {', '.join(FAULT_NAMES)}.",
)
def simulate(
    port: int,
    personality: str,
    gateway_name: str,
    model_map: tuple[str, ...],
    missing_usage: bool,
    latency_scale: float,
    seed: int,
    faults: tuple[str, ...],
) -> None:
    """Serve /v1/images/generations, /v1/images/edits and /v1/responses on loopback until Ctrl-C."""
    sim = Simulator(
        personality=personality,
        port=port,
        gateway_name=gateway_name,
        model_map=_pairs(model_map, "--model-map"),
        missing_usage=missing_usage,
        latency_scale=latency_scale,
        seed=seed,
        faults=_pairs(faults, "--fault"),
    )
    with sim:
        click.echo(sim.base_url)
        click.echo(f"imagecost simulator ({sim.route_owner}) is serving; press Ctrl-C to stop.", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo(f"stopped after {len(sim.served)} requests", err=True)
