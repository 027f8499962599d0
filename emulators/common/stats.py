"""What was called: requests per endpoint, answers per status, and a bounded request log."""

from __future__ import annotations

import collections
import threading
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

# Query parameters that carry OAuth secrets; the log shows them as ***.
SECRET_PARAMS = {"client_secret", "refresh_token", "code", "token", "access_token"}


class Stats:
    """Requests per endpoint and responses per status, plus a bounded log without secrets."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: collections.Counter = collections.Counter()
        self.responses: collections.Counter = collections.Counter()
        self.log: collections.deque = collections.deque(maxlen=5000)

    def record(self, key: str, status: int, method: str, path: str, query: str) -> None:
        """Count one request and remember it (the query is redacted of OAuth secrets)."""
        with self.lock:
            self.requests[key] += 1
            self.responses[str(status)] += 1
            self.log.append(
                {"method": method, "path": path, "query": redact(query), "status": status,
                 "time": datetime.now(UTC).isoformat()}
            )

    def snapshot(self) -> dict:
        """Counters as plain dicts."""
        with self.lock:
            return {"requests": dict(self.requests), "responses": dict(self.responses)}

    def clear(self) -> None:
        """Zero every counter and the log."""
        with self.lock:
            self.requests.clear()
            self.responses.clear()
            self.log.clear()


def redact(query: str) -> str:
    """A query string with the values of OAuth secret parameters replaced by ***."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "***" if k in SECRET_PARAMS else v) for k, v in pairs])
