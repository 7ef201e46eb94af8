"""OTLP/HTTP trace receiver (``imagecost serve``): services on other hosts, or an OpenTelemetry Collector's
``otlphttp`` exporter, send spans to ``POST /v1/traces``; each request is answered 200 only once its spans
are fsync'd into the spool, which ``imagecost ingest`` (or the receiver's own schedule) moves into the ledger.

    from ledger.receiver import Receiver, ReceiverConfig
    with Receiver(ReceiverConfig(spool_dir=Path("spool"), port=0)) as receiver:
        OTLPSpanExporter(endpoint=receiver.url)
"""

from __future__ import annotations

from ledger.receiver.config import TOKEN_ENV, ReceiverConfig
from ledger.receiver.server import Receiver

__all__ = ["TOKEN_ENV", "Receiver", "ReceiverConfig"]
