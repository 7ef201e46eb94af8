"""``imagecost ingest``: spool files and OpenTelemetry Collector OTLP/JSON files -> the ledger."""

from __future__ import annotations

from pathlib import Path

import click

from collector.spool_layout import REJECTED_DIR, spool_dir
from ledger.cli.options import ledger_option, prices_dir_option
from ledger.errors import UserError
from ledger.ingest import ingest_paths


@click.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--spool",
    "spool",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Spool directory (default: $IMAGECOST_SPOOL or ./.imagecost/spool when no FILE is given).",
)
@ledger_option
@prices_dir_option
@click.option("--delete", is_flag=True, help="Delete fully ingested spool files instead of moving them to done/.")
@click.option("--wait", is_flag=True, help="Wait for an ingest already running on the spool instead of exiting.")
def ingest(
    files: tuple[Path, ...], spool: Path | None, ledger: str | None, prices_dir: str | None, delete: bool, wait: bool
) -> None:
    """Move spans from the spool, and from any OTLP/JSON FILE an OpenTelemetry Collector wrote, into the ledger.

    Idempotent: a span read twice is stored once. Safe while apps keep writing: files still being written
    are read up to their last complete line and picked up again next time. Lines that cannot be read are
    reported with their file and line number and copied to rejected/; the rest goes in.
    """
    if spool is None and not files:
        spool = spool_dir()
        if not spool.is_dir():
            raise UserError(
                f"no spool directory at {spool}: nothing was recorded there yet; "
                "pass --spool DIR (or set IMAGECOST_SPOOL), or name OTLP/JSON files to ingest"
            )
    paths = ([spool] if spool is not None else []) + list(files)
    result = ingest_paths(
        ledger,
        paths,
        prices_dir,
        delete=delete,
        wait=wait,
        rejected_dir=spool / REJECTED_DIR if spool is not None else None,
    )
    for warning in result.warnings():
        click.echo(f"warning: {warning}", err=True)
    click.echo(result.summary())
    if result.stores is not None and result.stores.changed:
        click.echo(result.stores.summary())
