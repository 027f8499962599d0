"""The settings of one emulated Zoho installation (Accounts, CRM and Books together)."""

from __future__ import annotations

from dataclasses import dataclass, field

from emulators.common.sizes import Sizes


@dataclass
class EmulatorConfig:
    """Everything that makes one emulated Zoho installation (defaults: see the README)."""

    seed: int = 7
    sizes: Sizes = field(default_factory=Sizes)
    client_id: str = "crmbooks-demo"
    client_secret: str = "crmbooks-demo-secret"
    refresh_token: str = "crmbooks-demo-refresh"
    token_lifetime_s: int = 3600  # Zoho access tokens live one hour
    # Zoho Accounts mints at most 10 access tokens per refresh token per 10 minutes; None = not
    # enforced, because a test session legitimately refreshes far more often than a production
    # run does.
    token_refresh_limit_per_10min: int | None = None
    books_org_ids: list[str] = field(default_factory=lambda: ["20099001"])
    books_org_name: str = "Zylker Books Ltd"
    books_org_email: str = "finance@zylker.example"
    books_currency: str = "USD"
    books_country: str = "U.S.A"
    books_rate_limit: int = 100  # Books allows 100 requests per minute per organization
    # The length of that sliding window in seconds; tests shorten it (with a lower limit) to
    # show an organization's budget used in seconds instead of minutes.
    books_rate_window_s: float = 60.0
    books_daily_limit: int = 10000  # Books' daily cap per organization depends on the plan
    crm_concurrency: int = 15  # calls in flight the CRM Professional edition allows
    crm_edition: str = "Professional"
    crm_currency: str = "USD"
    crm_multi_currency: bool = False
    crm_org_name: str = "Zylker CRM"
