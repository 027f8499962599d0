"""Connection settings for Zoho CRM and Zoho Books: hosts, credentials, limits, timeouts.

Zoho runs eight data centres; the DC decides both the API host and the Accounts (OAuth) host
(docs/zoho-api-notes.md, "Hosts and data centres"). Real Zoho serves CRM and Books on the
same `www.zohoapis.*` host; the local emulators serve both, and Accounts, on one base URL.
The settings are read once, at the edge (CLI or a Prefect block), and handed to the clients:
no client method reads the environment.
"""

from __future__ import annotations

import ssl
from enum import StrEnum
from functools import cache

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class DataCentre(StrEnum):
    """Zoho's data centres."""

    US = "us"
    EU = "eu"
    IN = "in"
    AU = "au"
    CN = "cn"
    JP = "jp"
    CA = "ca"
    SA = "sa"


# (API host, Accounts host) per DC, from the official CRM SDK's data-centre classes.
# Canada is the odd one out: its Accounts host is accounts.zohocloud.ca, not accounts.zoho.ca.
DC_HOSTS: dict[DataCentre, tuple[str, str]] = {
    DataCentre.US: ("https://www.zohoapis.com", "https://accounts.zoho.com"),
    DataCentre.EU: ("https://www.zohoapis.eu", "https://accounts.zoho.eu"),
    DataCentre.IN: ("https://www.zohoapis.in", "https://accounts.zoho.in"),
    DataCentre.AU: ("https://www.zohoapis.com.au", "https://accounts.zoho.com.au"),
    DataCentre.CN: ("https://www.zohoapis.com.cn", "https://accounts.zoho.com.cn"),
    DataCentre.JP: ("https://www.zohoapis.jp", "https://accounts.zoho.jp"),
    DataCentre.CA: ("https://www.zohoapis.ca", "https://accounts.zohocloud.ca"),
    DataCentre.SA: ("https://www.zohoapis.sa", "https://accounts.zoho.sa"),
}


class ZohoConfig(BaseModel):
    """Everything the CRM and Books clients need; secrets are `SecretStr` (redacted in repr)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accounts_url: str
    api_url: str
    crm_api_url: str | None = None  # override when CRM lives elsewhere than api_url
    books_api_url: str | None = None  # override when Books lives elsewhere than api_url
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    books_org_id: str | None = None
    # Books: about 100 requests/minute per organization ("Books rate limits" in
    # docs/zoho-api-notes.md); the emulator enforces the same.
    books_requests_per_minute: float = Field(100, gt=0)
    books_daily_limit: int | None = Field(None, gt=0)
    books_max_concurrency: int = Field(5, ge=1)  # unverified: 5 (free) / 10 (paid)
    crm_requests_per_minute: float | None = Field(None, gt=0)  # CRM counts credits, not rate
    crm_max_concurrency: int = Field(10, ge=1)  # by edition: Standard 10 … Ultimate 25
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0)
    max_retry_after_s: float = Field(300.0, gt=0)  # a longer Retry-After is not waited out
    token_refresh_margin_s: float = Field(300.0, ge=0)  # refresh this long before expiry

    @field_validator("accounts_url", "api_url", "crm_api_url", "books_api_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"'{value}' is not an http(s) URL")
        return value.rstrip("/")

    @classmethod
    def from_dc(cls, dc: DataCentre | str, **settings) -> ZohoConfig:
        """Settings for one of Zoho's real data centres (`us`, `eu`, … `ca`, `sa`)."""
        try:
            api, accounts = DC_HOSTS[DataCentre(str(dc).lower())]
        except ValueError:
            known = ", ".join(d.value for d in DataCentre)
            raise ValueError(f"unknown Zoho data centre '{dc}'; use one of {known}") from None
        return cls(accounts_url=accounts, api_url=api, **settings)

    @property
    def crm_url(self) -> str:
        """Base URL of the CRM API host (without /crm/v8)."""
        return self.crm_api_url or self.api_url

    @property
    def books_url(self) -> str:
        """Base URL of the Books API host (without /books/v3)."""
        return self.books_api_url or self.api_url

    @property
    def timeout(self) -> httpx.Timeout:
        """Explicit httpx timeouts: httpx's default is 5 s for everything, too short for a
        200-record Books page (https://www.python-httpx.org/advanced/timeouts/)."""
        return httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s)

    def make_http_client(self) -> httpx.Client:
        """One long-lived client (connection pooling, https://www.python-httpx.org/advanced/clients/)."""
        return httpx.Client(timeout=self.timeout, headers={"Accept": "application/json"},
                            verify=shared_tls_context())


@cache
def shared_tls_context() -> ssl.SSLContext:
    """The TLS context every client of this process shares.

    httpx builds a new context for each client it makes, loading the whole CA bundle each time
    (several milliseconds of CPU, for every run's every client); one context may serve many
    clients (https://www.python-httpx.org/advanced/ssl/). It honours SSL_CERT_FILE and
    SSL_CERT_DIR as httpx does.
    """
    return httpx.create_ssl_context()
