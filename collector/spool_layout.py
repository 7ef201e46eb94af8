"""The spool's layout: file and directory names, shared by the exporter (``collector.spool``) and ingest.

Kept apart from the exporter so that ``imagecost ingest`` reads the layout without importing the OTLP
encoder (protobuf, ~0.25 s per run); ``collector.spool`` re-exports every name.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from collector.config import DEFAULT_SPOOL, ENV_SPOOL

SEALED_SUFFIX = ".jsonl"
PART_SUFFIX = ".jsonl.part"
DONE_DIR = "done"
REJECTED_DIR = "rejected"
LOCK_FILE = ".ingest.lock"


def spool_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The spool directory: the argument, else ``$IMAGECOST_SPOOL``, else ``./.imagecost/spool``."""
    return Path(path or os.environ.get(ENV_SPOOL) or DEFAULT_SPOOL)


@dataclass(frozen=True)
class SpoolName:
    """The parts of a spool file name: who wrote it, when that writer started, which of its files."""

    host: str
    pid: int
    started: str  # UTC, 20261124T102104123456Z
    seq: int

    @property
    def stem(self) -> str:
        return f"{self.host}-{self.pid}-{self.started}-{self.seq:06d}"

    @classmethod
    def parse(cls, name: str) -> SpoolName | None:
        """``host-pid-start-seq.jsonl[.part]`` -> SpoolName; None for any other name."""
        for suffix in (PART_SUFFIX, SEALED_SUFFIX):
            if name.endswith(suffix):
                parts = name.removesuffix(suffix).rsplit("-", 3)
                if len(parts) == 4 and parts[1].isdigit() and parts[3].isdigit():
                    return cls(parts[0], int(parts[1]), parts[2], int(parts[3]))
        return None


def sealed_path(path: Path) -> Path:
    """``x.jsonl.part`` -> ``x.jsonl`` (a sealed path is returned unchanged)."""
    name = path.name
    return path.with_name(name.removesuffix(".part")) if name.endswith(PART_SUFFIX) else path


def host_label() -> str:
    """This host's name as used in spool file names (split on "-" from the right, so it may keep dashes)."""
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in socket.gethostname()) or "host"
