"""Content-addressed image store: final images are written once, spans carry only a pointer.

Layout ``<store>/<sha[:2]>/<sha>.<ext>`` (sha = sha256 of the image bytes). A write goes to a temp file in
the target folder and is renamed into place, so readers never see half a file; an existing file is never
rewritten (same bytes, same name). Base64 is decoded here and goes nowhere else.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

# output_format -> file extension
EXTENSIONS = {"png": "png", "jpeg": "jpg", "jpg": "jpg", "webp": "webp", "gif": "gif", "svg": "svg"}


@dataclass(frozen=True)
class StoredImage:
    """The pointer recorded as an ``imagecost.image`` span event."""

    uri: str
    sha256: str | None
    bytes: int | None
    format: str | None
    public_url: str | None
    delete_after: str | None  # ISO 8601 UTC


@dataclass(frozen=True)
class ImageStore:
    root: Path
    public_url_prefix: str | None = None
    retention_days: float | None = None

    def put_b64(self, b64: str, fmt: str | None) -> StoredImage:
        """Decode, hash and store one image (no-op write if that content is already stored)."""
        data = base64.b64decode(b64)
        sha = hashlib.sha256(data).hexdigest()
        ext = EXTENSIONS.get(fmt or "png", "bin")
        relative = f"{sha[:2]}/{sha}.{ext}"
        path = self.root / relative
        if not path.exists():
            _write_atomic(path, data)
        return StoredImage(
            uri=path.resolve().as_uri(),
            sha256=sha,
            bytes=len(data),
            format=fmt,
            public_url=f"{self.public_url_prefix.rstrip('/')}/{relative}" if self.public_url_prefix else None,
            delete_after=self._delete_after(),
        )

    def _delete_after(self) -> str | None:
        if self.retention_days is None:
            return None
        return (datetime.now(UTC) + timedelta(days=self.retention_days)).isoformat(timespec="seconds")


def url_pointer(url: str, fmt: str | None) -> StoredImage:
    """A pointer to an image the server hosts itself (``data[].url``): nothing is downloaded."""
    return StoredImage(uri=url, sha256=None, bytes=None, format=fmt, public_url=url, delete_after=None)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic; a concurrent writer of the same sha wrote the same bytes
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
