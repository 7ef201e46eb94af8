"""Receiver settings and the one safety rule checked before binding: no token, no network exposure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import UserError

TOKEN_ENV = "IMAGECOST_RECEIVER_TOKEN"
DEFAULT_PORT = 4318  # the OTLP/HTTP port every exporter defaults to
MiB = 1024 * 1024


@dataclass(frozen=True)
class ReceiverConfig:
    """Everything ``imagecost serve`` can be told. Sizes in bytes, times in seconds."""

    spool_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    max_body_bytes: int = 8 * MiB  # as received, before Content-Encoding is undone
    max_decompressed_bytes: int = 32 * MiB  # after gunzip: the gzip-bomb limit
    max_spans: int = 20_000  # per request; the SDK's BatchSpanProcessor sends at most 512
    queue_size: int = 64  # requests in progress at once (decoding, or waiting for their fsync)
    queue_wait_s: float = 1.0  # how long a request may wait for one of those slots before it gets 503
    retry_after_s: int = 1  # Retry-After on 503: N..2N whole seconds (RFC 9110 §10.2.3), jittered
    ingest_every_s: float = 10.0  # 0 = never; `imagecost ingest` can run beside the receiver instead
    ledger: Path | None = None
    prices_dir: Path | None = None

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_decompressed_bytes", "max_spans", "queue_size"):
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if min(self.retry_after_s, self.ingest_every_s, self.queue_wait_s) < 0:
            raise UserError("--retry-after, --queue-wait and --ingest-every must not be negative")
        if self.token is not None and not self.token.strip():
            raise UserError(f"the receiver token is empty; pass --token or set ${TOKEN_ENV} to a secret string")
        check_exposure(self.host, self.token)


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``; a name other than localhost is not trusted to be."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a bearer token: anyone on the network could write spans."""
    if token is None and not is_loopback(host):
        raise UserError(
            f"refusing to listen on {host} without a token: pass --token or set ${TOKEN_ENV} "
            "(required for any address but loopback), or use --host 127.0.0.1"
        )
