"""Helpers of the hostile-request tests of the event receiver: requests sent byte for byte
(no client library normalises their paths, headers or bodies), bodies larger than the limit
sent only in part, and the resident memory of a process.

A refused body is never sent whole: the receiver answers before it has read it, and a client
that kept sending after the answer would find the connection reset (the unread bytes make
the server's close a reset, which can discard the answer before it is read). So an oversized
body is sent up to a little past the limit, then the answer is waited for.
"""

from __future__ import annotations

import json
import select
import socket
from pathlib import Path
from urllib.parse import urlsplit


def read_answer(sock: socket.socket, timeout_s: float) -> tuple[int, dict | None, bytes]:
    """Status, JSON body (None if not JSON) and raw body of the answer on `sock`."""
    sock.settimeout(timeout_s)
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            break
        if not piece:
            break
        data += piece
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if length is not None and len(rest) >= length:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        raise AssertionError("the receiver closed the connection without an answer")
    status = int(head.split(b" ", 2)[1])
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    return status, parsed, body


def exchange(base_url: str, method: str, target: str, headers: list[tuple[str, str]] = (),
             body: bytes = b"", *, chunked: bool = False, send_at_most: int | None = None,
             declared_length: int | str | None = None, timeout_s: float = 30.0):
    """Send one request as given and return (status, JSON answer or None, raw answer).

    `chunked` sends the body with Transfer-Encoding: chunked (no Content-Length);
    `declared_length` sends that Content-Length whatever the body; `send_at_most` stops
    sending the body after that many bytes and waits for the answer (oversized bodies).
    """
    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=timeout_s)
    try:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {url.hostname}:{url.port}",
                 "Connection: close", *(f"{k}: {v}" for k, v in headers)]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        else:
            length = len(body) if declared_length is None else declared_length
            lines.append(f"Content-Length: {length}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        limit = len(body) if send_at_most is None else min(send_at_most, len(body))
        sent = 0
        while sent < limit:
            if select.select([sock], [], [], 0)[0]:
                break  # answered already: send no more
            piece = body[sent:min(sent + 65536, limit)]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        if chunked and sent == len(body):
            sock.sendall(b"0\r\n\r\n")
        return read_answer(sock, timeout_s)
    finally:
        sock.close()


def nested(depth: int) -> bytes:
    """A JSON list nested `depth` deep."""
    return b"[" * depth + b"]" * depth


def rss_mb(pid: int) -> float:
    """The resident memory of process `pid`, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")
