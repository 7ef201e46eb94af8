"""``imagecost images``: stored image files (retention)."""

from __future__ import annotations

import click

from ledger.cli.options import ledger_option
from ledger.images_prune import prune_images


@click.group()
def images() -> None:
    """Stored image files: apply the retention recorded on each image."""


@images.command()
@ledger_option
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted; change nothing.")
def prune(ledger: str | None, dry_run: bool) -> None:
    """Delete image files whose delete_after has passed (unless another call still keeps the same content)."""
    for line in prune_images(ledger, dry_run=dry_run).lines():
        click.echo(line)
