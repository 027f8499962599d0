"""The emulator's request log is written before the answer leaves.

Tests clear the log right after a write of their own and then assert what the code under
test wrote. Were the log appended after the answer's last byte was sent, a client holding
its answer could clear the log before its own request landed in it: the request would then
show up as a write of the code under test. The ASGI app is driven directly here, so the
order is checked at the moment the last byte is sent, without any timing.
"""

from __future__ import annotations

import asyncio

import pytest

from emulators import Emulator


def _scope(method: str, path: str) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"", "headers": [],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


def _log_sizes_as_sent(emu: Emulator, method: str, path: str) -> list[tuple[str, int]]:
    """Drive the app once; for every message sent, the log's size at that moment."""
    sent: list[tuple[str, int]] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append((message["type"], len(emu.stats.log)))

    asyncio.run(emu.app()(_scope(method, path), receive, send))
    return sent


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/crm/v8/Accounts"),  # refused by the app itself: no token (401)
    ("DELETE", "/crm/v8/Accounts/1"),
    ("GET", "/books/v3/contacts"),
])
def test_a_request_is_logged_before_the_last_byte_of_its_answer(method, path):
    emu = Emulator()
    sent = _log_sizes_as_sent(emu, method, path)
    assert sent[0] == ("http.response.start", 0)
    assert sent[-1] == ("http.response.body", 1)  # in the log before the client has it all
    [entry] = list(emu.stats.log)
    assert (entry["method"], entry["path"]) == (method, path)
