"""What both clients share: building ZohoHttp from ZohoConfig, datetimes, chunking."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from crmbooks.connectors.auth import TokenShare, ZohoOAuth
from crmbooks.connectors.config import ZohoConfig
from crmbooks.connectors.http import CallCounter, ZohoHttp
from crmbooks.connectors.pacing import Pacer


def build_http(
    system: str,
    config: ZohoConfig,
    base_url: str,
    client: httpx.Client | None,
    pacer: Pacer,
    calls: CallCounter | None,
    sleep: Callable[[float], None] = time.sleep,
    token_share: TokenShare | None = None,
) -> ZohoHttp:
    """A ZohoHttp for `system` with its own OAuth flow (its token kept in `token_share` for
    every process of the connection, when given) and the given (or a new) httpx client."""
    auth = ZohoOAuth(config.accounts_url, config.client_id, config.client_secret,
                     config.refresh_token, margin_s=config.token_refresh_margin_s,
                     share=token_share)
    return ZohoHttp(system, base_url, client or config.make_http_client(), auth, pacer,
                    calls or CallCounter(), max_retries=config.max_retries,
                    max_retry_after_s=config.max_retry_after_s, sleep=sleep)


def iso(moment: datetime) -> str:
    """ISO-8601 with a colon offset, whole seconds, as CRM writes it."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware (UTC) datetime")
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def chunks(items: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    """(start index, slice) pairs of at most `size` items."""
    for start in range(0, len(items), size):
        yield start, items[start:start + size]
