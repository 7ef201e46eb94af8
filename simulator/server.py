"""`Simulator`: the local OpenAI-compatible server on loopback, run by uvicorn in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import uvicorn

from ledger.errors import UserError
from simulator.app import SimState, build_app
from simulator.config import ServedLog, SimConfig

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class Simulator:
    """A real HTTP server answering like api.openai.com (or a gateway) for the image routes.

    with Simulator(port=0) as sim:          # port 0 picks a free port; sim.base_url has the real one
        client = OpenAI(api_key="sk-test-not-a-real-key", base_url=sim.base_url)
        ...
        sim.served                           # one dict per request answered (see simulator.reply.RECORD_DEFAULTS)
    """

    def __init__(
        self,
        personality: str = "openai",
        port: int = 0,
        gateway_name: str = "laozhang.ai",
        model_map: Mapping[str, str] | None = None,
        missing_usage: bool = False,
        latency_scale: float = 0.0,
        seed: int = 0,
        faults: Mapping[str, str] | None = None,
    ) -> None:
        self.config = SimConfig.build(
            personality=personality,
            gateway_name=gateway_name,
            model_map=model_map,
            missing_usage=missing_usage,
            latency_scale=latency_scale,
            seed=seed,
            faults=faults,
        )
        self._requested_port = port
        self._log = ServedLog()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> Simulator:
        """Bind, start uvicorn in a daemon thread and wait until it accepts connections."""
        if self._server is not None:
            raise RuntimeError("this Simulator is already running")
        sock = _bind(self._requested_port)
        app = build_app(SimState(self.config, self._log))
        config = uvicorn.Config(
            app,
            http="h11",  # the disconnect fault closes the h11 connection's transport
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"imagecost-simulator-{sock.getsockname()[1]}"
        )
        thread.daemon = True
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError("the simulator did not start (see the log above)")
            time.sleep(0.005)
        self._server, self._thread, self._socket = server, thread, sock
        self._port = sock.getsockname()[1]
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread (idempotent)."""
        if self._server is None:
            return
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- what callers read -----------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not running; use `with Simulator() as sim:` or sim.start()")
        return self._port

    @property
    def host_port(self) -> str:
        """`127.0.0.1:PORT`, the key for the collector's routes table."""
        return f"{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/v1`, to pass as `OpenAI(base_url=...)`."""
        return f"http://{self.host_port}/v1"

    @property
    def route_owner(self) -> str:
        return self.config.route_owner

    @property
    def served(self) -> list[dict[str, Any]]:
        """A copy of the served log: one dict per request answered, oldest first (no base64, no prompts)."""
        return self._log.snapshot()

    def clear_served(self) -> None:
        self._log.clear()

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "stopped"
        return f"Simulator({self.config.personality}, {where})"


def _bind(port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only then (else Nagle adds ~40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise UserError(
            f"cannot listen on {HOST}:{port} ({exc.strerror}); pick another --port, or 0 for a free one"
        ) from None
    sock.set_inheritable(True)
    return sock
