"""The emulators' clock."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime


def utc_now() -> datetime:
    """Now in UTC, in whole seconds: Zoho's timestamps carry no fractions of a second."""
    return datetime.now(UTC).replace(microsecond=0)


class ServerDate:
    """ASGI middleware: every answer's Date header says the emulator's own time, as a real
    server's Date agrees with the modified stamps it writes (a client may rely on both
    coming from one clock). The HTTP server is started without a Date header of its own."""

    def __init__(self, app, clock):
        self.app, self.clock = app, clock

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)

        async def dated(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"date"]
                stamp = format_datetime(self.clock(), usegmt=True).encode("latin-1")
                message = {**message, "headers": [*headers, (b"date", stamp)]}
            await send(message)

        return await self.app(scope, receive, dated)
