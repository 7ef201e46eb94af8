"""The Starlette app: ``POST /v1/traces`` (OTLP/HTTP) and ``GET /healthz``.

A request walks one path; every refusal is a :class:`~ledger.receiver.otlp.Rejection` that writes nothing:

    bearer token (401) -> Content-Type (415) -> admission (one of ``queue_size`` slots; 503 + Retry-After
    after ``queue_wait_s`` without one) -> body size (413) -> Content-Encoding (415/400/413) -> parse (400)
    -> span count (413) -> drop malformed spans (partial success) -> spool writer -> 200 once fsync'd.

A slot is held from admission to answer, so it bounds the receiver's real bottleneck, whichever it is:
the CPU (decoding and encoding OTLP/JSON, done in worker threads so the event loop stays free to answer)
or the disk (the writer's fsyncs). A short wait for a slot turns a burst into latency; only a backlog
that outlasts it is refused, and refused clients retry (the bodies of waiting requests are not read yet).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
from collections import Counter
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.otlp_json import encode_request_json_line
from ledger.receiver import otlp
from ledger.receiver.config import ReceiverConfig
from ledger.receiver.writer import GroupCommitWriter, Saturated

log = logging.getLogger(__name__)


@dataclass
class ReceiverStats:
    """Counters since start (served at /healthz; the benchmark reads them)."""

    accepted_requests: int = 0
    accepted_spans: int = 0
    rejected_spans: int = 0  # malformed spans inside accepted requests (partial success)
    waited: int = 0  # requests that found every slot taken and queued for one
    refused: Counter[int] = field(default_factory=Counter)  # HTTP status -> requests refused as a whole

    def as_dict(self) -> dict[str, object]:
        return {
            "accepted_requests": self.accepted_requests,
            "accepted_spans": self.accepted_spans,
            "rejected_spans": self.rejected_spans,
            "waited": self.waited,
            "refused": {str(status): count for status, count in sorted(self.refused.items())},
        }


class TraceEndpoint:
    """``POST /v1/traces``; its state is the writer, the admission slots and the stats."""

    def __init__(self, config: ReceiverConfig, writer: GroupCommitWriter) -> None:
        self.config = config
        self.writer = writer
        self.stats = ReceiverStats()
        self._token = config.token.encode() if config.token else None
        self._slots = asyncio.Semaphore(config.queue_size)  # FIFO: waiting requests are served in arrival order

    async def handle(self, request: Request) -> Response:
        kind = otlp.media_type(request.headers.get("content-type"))
        try:
            self._authorize(request.headers.get("authorization"))
            if kind is None:
                raise otlp.Rejection(
                    415,
                    f"unsupported Content-Type {request.headers.get('content-type')!r}; "
                    f"send {otlp.PROTOBUF} or {otlp.JSON}",
                )
            await self._admit()
            try:
                decoded = await self._accept(request, kind)
            finally:
                self._slots.release()
        except otlp.Rejection as rejection:
            return self._refuse(rejection.status, rejection.reason, kind)
        except Saturated as exc:
            return self._refuse(503, f"receiver is saturated ({exc}); retry later", kind, retry=True)
        except OSError as exc:  # the spool could not be written or synced: nothing was acknowledged
            log.error("spool write failed: %s", exc)
            return self._refuse(503, f"spool write failed ({exc.strerror or exc}); retry later", kind, retry=True)
        except ClientDisconnect:
            return Response(status_code=400)
        self.stats.accepted_requests += 1
        self.stats.accepted_spans += decoded.accepted_spans
        self.stats.rejected_spans += decoded.rejected_spans
        return Response(otlp.success_body(decoded, kind), media_type=kind)

    async def _admit(self) -> None:
        """Take one of ``queue_size`` slots, waiting at most ``queue_wait_s`` (in arrival order) for one."""
        wait = self.config.queue_wait_s
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns at once
            return
        self.stats.waited += 1
        if wait > 0:
            try:
                await asyncio.wait_for(self._slots.acquire(), wait)
                return
            except TimeoutError:
                pass
        raise Saturated(f"{self.config.queue_size} requests in progress, waited {wait:g}s")

    async def _accept(self, request: Request, kind: str) -> otlp.Decoded:
        """Read, decode and encode (in a worker thread: the CPU part), then wait for the line's fsync."""
        body = await self._read_body(request)
        encoding = request.headers.get("content-encoding")
        decoded, line = await run_in_threadpool(self._decode, body, encoding, kind)
        if line is not None:
            await asyncio.wrap_future(self.writer.submit(line))
        return decoded

    def _authorize(self, header: str | None) -> None:
        if self._token is None:
            return
        scheme, _, credentials = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), self._token):
            raise otlp.Rejection(401, "missing or wrong bearer token (Authorization: Bearer <token>)")

    async def _read_body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise otlp.Rejection(413, f"body of {declared} bytes is larger than the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise otlp.Rejection(413, f"body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _decode(self, body: bytes, content_encoding: str | None, kind: str) -> tuple[otlp.Decoded, bytes | None]:
        """The decoded request and its spool line (None when no span is left to write)."""
        data = otlp.decompress(body, content_encoding, self.config.max_decompressed_bytes)
        request = otlp.parse(data, kind)
        spans = otlp.span_count(request)
        if spans > self.config.max_spans:
            raise otlp.Rejection(
                413, f"{spans} spans in one request, limit {self.config.max_spans}; lower the exporter's batch size"
            )
        decoded = otlp.drop_malformed(request)
        return decoded, encode_request_json_line(decoded.request) if decoded.accepted_spans else None

    def _retry_after(self) -> int:
        """Whole seconds in [N, 2N]: clients refused together must not all come back in the same instant
        (the OTel SDK exporter waits exactly Retry-After, with no jitter of its own)."""
        return self.config.retry_after_s + random.randint(0, self.config.retry_after_s)

    def _refuse(self, status: int, reason: str, kind: str | None, *, retry: bool = False) -> Response:
        self.stats.refused[status] += 1
        log.info("refused OTLP request: %d %s", status, reason)
        headers = {"Retry-After": str(self._retry_after())} if retry else {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if kind is None:
            return Response(reason + "\n", status_code=status, media_type="text/plain", headers=headers)
        return Response(otlp.error_body(status, reason, kind), status_code=status, media_type=kind, headers=headers)


def create_app(config: ReceiverConfig, writer: GroupCommitWriter) -> Starlette:
    """The ASGI app; ``app.state.endpoint.stats`` holds the counters."""
    endpoint = TraceEndpoint(config, writer)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", **endpoint.stats.as_dict(), "writer": writer.stats()})

    app = Starlette(
        routes=[Route("/v1/traces", endpoint.handle, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    )
    app.state.endpoint = endpoint
    return app
