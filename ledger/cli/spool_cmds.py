"""``imagecost spool prune``: delete the ingested spool files a backup of the ledger already holds."""

from __future__ import annotations

from pathlib import Path

import click

from collector.spool_layout import spool_dir
from ledger.backup import prune_done
from ledger.cli.options import ledger_option, spool_option
from ledger.db import ledger_path


@click.group()
def spool() -> None:
    """The spool's ingested files (done/): what a rebuild may still need."""


@spool.command()
@ledger_option
@spool_option
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted; change nothing.")
def prune(ledger: str | None, spool: Path | None, dry_run: bool) -> None:
    """Delete done/ files whose every line is in each of the ledger's backups (`imagecost rebuild` starts from one).

    Files ingested after the oldest backup are kept: a rebuild may have to start from it.
    """
    for line in prune_done(ledger_path(ledger), spool or spool_dir(), dry_run=dry_run).lines():
        click.echo(line)
