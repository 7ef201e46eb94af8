"""Run the receiver: the spool writer thread, uvicorn, and the scheduled ingest, started and stopped in order.

Start: writer -> socket bound (a busy port is a one-line error) -> uvicorn -> ingest loop.
Stop:  uvicorn stops accepting and finishes in-flight requests (their lines are fsync'd) -> writer drains
and seals its file -> ingest loop stops after one last run, so what was acknowledged reaches the ledger.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable

import uvicorn

from ledger.db import ledger_path
from ledger.errors import UserError
from ledger.receiver.app import create_app
from ledger.receiver.config import ReceiverConfig
from ledger.receiver.writer import GroupCommitWriter

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0 = any free one); UserError when that is impossible.

    The socket is made with ``proto=IPPROTO_TCP`` on purpose: asyncio only turns Nagle off (TCP_NODELAY) for
    sockets that say so, and without it every answer on a kept-alive connection waited ~40 ms for a delayed ACK.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
        return sock
    except OSError as exc:
        reason = exc.strerror or exc
        raise UserError(f"cannot listen on {host}:{port}: {reason}; choose another --host or --port") from None


class IngestLoop:
    """Every ``ingest_every_s`` seconds: ingest the spool directory (the receiver's open ``.part`` file is
    read up to its last line, like any spool file; another ingest holding the spool makes a run skip)."""

    def __init__(self, config: ReceiverConfig) -> None:
        try:  # imported here: only a scheduled ingest needs it
            from ledger.ingest import ingest_paths
        except ImportError as exc:
            raise UserError(f"ledger ingest is unavailable ({exc}); run with --ingest-every 0") from None
        self._ingest_paths = ingest_paths
        self.config = config
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="imagecost-ingest", daemon=True)

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 120.0) -> None:
        """Stop the schedule and join (the owner makes the last run with ``run_once``)."""
        self._stop.set()
        self._thread.join(timeout)

    def run_once(self) -> None:
        """Ingest once; a failure is logged and the next run tries again (files stay in the spool)."""
        config = self.config
        try:
            result = self._ingest_paths(ledger_path(config.ledger), [config.spool_dir], prices_dir=config.prices_dir)
            self.runs += 1
            if result.files:
                log.info("scheduled ingest: %s", result.summary())
            for warning in result.warnings():
                log.warning("scheduled ingest: %s", warning)
        except UserError as exc:  # e.g. `imagecost ingest` holds the spool right now
            log.warning("scheduled ingest skipped: %s", exc)
        except Exception:
            log.exception("scheduled ingest failed")

    def _loop(self) -> None:
        while not self._stop.wait(self.config.ingest_every_s):
            self.run_once()


class Receiver:
    """The running receiver. ``with Receiver(config) as r: r.url`` in tests; ``serve_forever()`` for the CLI."""

    def __init__(self, config: ReceiverConfig, *, writer: GroupCommitWriter | None = None) -> None:
        self.config = config
        self.writer = writer or GroupCommitWriter(config.spool_dir, queue_size=config.queue_size)
        self.app = create_app(config, self.writer)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ingest: IngestLoop | None = None
        self._stopped = False

    @property
    def port(self) -> int:
        assert self._socket is not None, "not started"
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """``http://host:port/v1/traces`` (what an exporter's endpoint should be)."""
        host = self.config.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/v1/traces"

    @property
    def ingest_runs(self) -> int:
        """Scheduled ingest runs completed (0 when the schedule is off)."""
        return self._ingest.runs if self._ingest else 0

    @property
    def stats(self) -> dict[str, object]:
        """Request and writer counters (also served at ``GET /healthz``)."""
        return {**self.app.state.endpoint.stats.as_dict(), "writer": self.writer.stats()}

    def start(self) -> Receiver:
        """Start the writer, uvicorn (in a thread) and the ingest loop; returns once connections are accepted."""
        if self.config.ingest_every_s > 0:
            self._ingest = IngestLoop(self.config)
        self.config.spool_dir.mkdir(parents=True, exist_ok=True)
        self._socket = bind(self.config.host, self.config.port)
        self.writer.start()
        settings = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=30
        )
        server = self._server = uvicorn.Server(settings)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name="imagecost-receiver", daemon=True
        )
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError("the receiver's HTTP server failed to start (see the log above)")
            self._thread.join(0.01)
        if self._ingest is not None:
            self._ingest.start()
        return self

    def stop(self) -> None:
        """Finish in-flight requests, drain and seal the spool file, then one last ingest (once)."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(60)
        self.writer.close()
        if self._ingest is not None and self._ingest.started:
            self._ingest.stop()
            self._ingest.run_once()  # what was acknowledged before the stop reaches the ledger now
        if self._socket is not None:
            self._socket.close()

    def serve_forever(self, announce: Callable[[str], None] | None = None) -> None:
        """Run until SIGINT or SIGTERM, then stop in order (a second Ctrl-C interrupts the stop)."""
        stopping = threading.Event()
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in handled}
        try:
            self.start()
            if announce is not None:
                announce(self.url)
            stopping.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
