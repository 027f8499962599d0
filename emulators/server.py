"""Serving the emulators: in-process on a background thread (tests, demo) or in the foreground.

`EmulatorServer` starts uvicorn on 127.0.0.1 (port 0 picks a free one), waits until the socket
listens, and tells the emulator its own base URL so that the token endpoint's `api_domain` points
back at it, as real Zoho Accounts points at the data centre's API host.
"""

from __future__ import annotations

import threading
import time

import uvicorn

from emulators.app import Emulator
from emulators.common.config import EmulatorConfig


class EmulatorServer:
    """A running emulator on a background thread; use as a context manager or start()/stop()."""

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0):
        self.emu = Emulator(config)
        self.host = host
        self._server = uvicorn.Server(
            uvicorn.Config(self.emu.app(), host=host, port=port, log_level="warning",
                           access_log=False, timeout_keep_alive=60, lifespan="off",
                           date_header=False)
        )
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The base URL of all three products, e.g. http://127.0.0.1:8900."""
        return self.emu.base_url

    def start(self, timeout: float = 15.0) -> EmulatorServer:
        """Start serving and return once the socket accepts connections."""
        self._thread = threading.Thread(target=self._server.run, name="zoho-emulator",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator could not listen on {self.host}")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.emu.base_url = f"http://{self.host}:{port}"
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_forever(config: EmulatorConfig, host: str, port: int, on_ready=None) -> None:
    """Serve in the foreground until Ctrl-C; `on_ready(server)` is called once it listens."""
    server = EmulatorServer(config, host, port).start()
    if on_ready is not None:
        on_ready(server)
    try:
        while server._thread is not None and server._thread.is_alive():
            server._thread.join(timeout=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
