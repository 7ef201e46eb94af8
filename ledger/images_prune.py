"""Image retention: delete stored images whose ``delete_after`` has passed, and record each deletion.

An image file is deleted only when every pointer to its content (same sha256) has expired: one call
whose image is kept longer (a later ``delete_after``, or none) keeps the shared file. Each deletion is
recorded in ``image_deletions`` (reason ``retention``; ``missing`` when the file was already gone), so it
is never attempted twice. Only local files are handled (a path, or a ``file://`` URI).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa

from ledger import db

CANDIDATES_SQL = """
with pointers as (
    select sha256, uri, delete_after from images where sha256 is not null and uri is not null
), kept as (
    -- content still pointed to by an image with no end of retention, or a later one
    select sha256 from pointers group by sha256
    having bool_or(delete_after is null) or max(delete_after) > $now
), expired as (
    select distinct sha256, uri from pointers where sha256 not in (select sha256 from kept)
), final as (
    select sha256, uri from expired anti join image_deletions using (sha256, uri)
)
select * from final
"""


@dataclass(frozen=True)
class Deletion:
    sha256: str
    uri: str
    path: Path
    bytes: int  # freed (0 when the file was missing)
    reason: str  # retention | missing


@dataclass
class PruneResult:
    dry_run: bool
    deletions: list[Deletion] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (uri, why)

    @property
    def bytes_freed(self) -> int:
        return sum(d.bytes for d in self.deletions)

    def lines(self) -> list[str]:
        """What ``imagecost images prune`` prints: one line per file, then the total."""
        verb = "would delete" if self.dry_run else "deleted"
        out = []
        for d in self.deletions:
            if d.reason == "missing":
                out.append(f"missing {d.path} (already gone; recorded)" if not self.dry_run else f"missing {d.path}")
            else:
                out.append(f"{verb} {d.path} ({d.bytes:,} bytes)")
        out += [f"skipped {uri}: {why}" for uri, why in self.skipped]
        files = sum(1 for d in self.deletions if d.reason == "retention")
        out.append(f"{verb} {files} file(s), {self.bytes_freed:,} bytes {'to free' if self.dry_run else 'freed'}")
        return out


def local_path(uri: str) -> Path | None:
    """The local file a pointer names (a path or a ``file://`` URI); None for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and uri[1:2] == ":"):  # plain path (or C:\...)
        return Path(uri)
    return None


def prune_images(
    ledger_path: str | os.PathLike[str] | None = None, *, dry_run: bool = False, now: datetime | None = None
) -> PruneResult:
    """Delete the expired image files (see the module doc); ``dry_run`` only says what would go."""
    result = PruneResult(dry_run)
    moment = now or datetime.now(UTC)
    with db.open_ledger(ledger_path) as con:
        candidates = con.execute(CANDIDATES_SQL, {"now": moment}).fetchall()
        for sha256, uri in sorted(candidates, key=lambda c: str(local_path(c[1]) or c[1])):
            path = local_path(uri)
            if path is None:
                result.skipped.append((uri, "not a local file (only paths and file:// URIs are pruned)"))
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                result.deletions.append(Deletion(sha256, uri, path, 0, "missing"))
                continue
            if not dry_run:
                path.unlink(missing_ok=True)
            result.deletions.append(Deletion(sha256, uri, path, size, "retention"))
        if not dry_run and result.deletions:
            recorded = pa.table(
                {
                    "sha256": [d.sha256 for d in result.deletions],
                    "uri": [d.uri for d in result.deletions],
                    "reason": [d.reason for d in result.deletions],
                }
            )
            con.register("_deletions", recorded)
            con.execute("insert into image_deletions (sha256, uri, reason) select sha256, uri, reason from _deletions")
            con.unregister("_deletions")
    return result
