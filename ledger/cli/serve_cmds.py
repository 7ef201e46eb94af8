"""``imagecost serve``: the OTLP/HTTP trace receiver (see ``ledger.receiver``)."""

from __future__ import annotations

from pathlib import Path

import click

from collector import semconv
from collector.config import ENV_SPOOL
from collector.spool_layout import spool_dir
from ledger.cli.options import ledger_option, prices_dir_option
from ledger.db import ledger_path
from ledger.receiver import TOKEN_ENV, Receiver, ReceiverConfig
from ledger.receiver.config import DEFAULT_PORT

_DEFAULTS = ReceiverConfig(spool_dir=Path("."))

HELP = f"""Receive OpenTelemetry traces over OTLP/HTTP and spool them for the ledger.

POST /v1/traces takes protobuf (application/x-protobuf) or OTLP/JSON (application/json), optionally
gzip-compressed. A request is answered 200 only after its spans are fsync'd into the spool; every span
with valid ids and times is kept (spans of other instrumentations too: ingest picks the image calls);
malformed spans are dropped and counted in the response's partial_success. At most --queue-size requests
are in progress at once; one that cannot get a slot within --queue-wait seconds gets 503 with Retry-After,
and OTLP exporters retry it. The spool is ingested into the
ledger every --ingest-every seconds (0 = leave it to `imagecost ingest` running beside the receiver).
Listening on anything but loopback requires a bearer token (--token or ${TOKEN_ENV}); the receiver
speaks plain HTTP, so across hosts put it behind TLS (a reverse proxy) or on a private network.
GET /healthz answers the request counters (no token needed).

\b
Point an OpenTelemetry SDK (any language) at it:
  OTEL_EXPORTER_OTLP_ENDPOINT=http://RECEIVER_HOST:{DEFAULT_PORT}
  OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
  OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20$TOKEN

\b
Or an OpenTelemetry Collector (config.yaml):
  exporters:
    otlphttp/imagecost:
      endpoint: http://RECEIVER_HOST:{DEFAULT_PORT}   # /v1/traces is appended
      compression: gzip
      headers:
        Authorization: "Bearer ${{env:{TOKEN_ENV}}}"
      retry_on_failure:
        enabled: true                    # 503 + Retry-After = retry later
  processors:
    batch:
      send_batch_max_size: 10000         # at most serve's --max-spans
    filter/imagecost:                    # optional: forward image calls only
      error_mode: ignore
      traces:
        span:
          - 'attributes["{semconv.GEN_AI_OUTPUT_TYPE}"] != "{semconv.OUTPUT_TYPE_IMAGE}"'
  service:
    pipelines:
      traces/imagecost:
        receivers: [otlp]
        processors: [filter/imagecost, batch]
        exporters: [otlphttp/imagecost]
"""


@click.command(help=HELP, context_settings={"max_content_width": 110})
@click.option("--host", default=_DEFAULTS.host, show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True, help="Port (0 = any).")
@click.option(
    "--spool",
    "spool",
    type=click.Path(file_okay=False),
    default=None,
    envvar=ENV_SPOOL,
    help=f"Spool directory (default ./.imagecost/spool, or ${ENV_SPOOL}).",
)
@click.option("--token", default=None, envvar=TOKEN_ENV, help=f"Bearer token clients must send (or ${TOKEN_ENV}).")
@click.option(
    "--ingest-every",
    type=click.FloatRange(min=0),
    default=_DEFAULTS.ingest_every_s,
    show_default=True,
    help="Seconds between ingests of the spool into the ledger; 0 = off.",
)
@ledger_option
@prices_dir_option
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=_DEFAULTS.max_body_bytes,
    show_default=True,
    help="Largest request body as sent (413 above).",
)
@click.option(
    "--max-decompressed-bytes",
    type=click.IntRange(min=1),
    default=_DEFAULTS.max_decompressed_bytes,
    show_default=True,
    help="Largest body after gunzip (413 above).",
)
@click.option(
    "--max-spans",
    type=click.IntRange(min=1),
    default=_DEFAULTS.max_spans,
    show_default=True,
    help="Most spans in one request (413 above).",
)
@click.option(
    "--queue-size",
    type=click.IntRange(min=1),
    default=_DEFAULTS.queue_size,
    show_default=True,
    help="Requests in progress at once (decoding, or waiting for their spool fsync).",
)
@click.option(
    "--queue-wait",
    type=click.FloatRange(min=0),
    default=_DEFAULTS.queue_wait_s,
    show_default=True,
    help="Seconds a request may wait for one of those slots before it gets 503 (0 = refuse at once).",
)
@click.option(
    "--retry-after",
    type=click.IntRange(min=0),
    default=_DEFAULTS.retry_after_s,
    show_default=True,
    help="Seconds N clients are asked to wait after a 503 (a random N..2N, so they do not retry together).",
)
def serve(
    host: str,
    port: int,
    spool: str | None,
    token: str | None,
    ingest_every: float,
    ledger: str | None,
    prices_dir: str | None,
    max_body_bytes: int,
    max_decompressed_bytes: int,
    max_spans: int,
    queue_size: int,
    queue_wait: float,
    retry_after: int,
) -> None:
    config = ReceiverConfig(
        spool_dir=spool_dir(spool),
        host=host,
        port=port,
        token=token,
        max_body_bytes=max_body_bytes,
        max_decompressed_bytes=max_decompressed_bytes,
        max_spans=max_spans,
        queue_size=queue_size,
        queue_wait_s=queue_wait,
        retry_after_s=retry_after,
        ingest_every_s=ingest_every,
        ledger=ledger_path(ledger),
        prices_dir=Path(prices_dir) if prices_dir else None,
    )
    receiver = Receiver(config)
    ingest = f"ingest every {ingest_every:g}s into {config.ledger}" if ingest_every > 0 else "scheduled ingest off"
    receiver.serve_forever(lambda url: click.echo(f"imagecost serve: {url} -> {config.spool_dir} ({ingest})", err=True))
