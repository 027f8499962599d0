"""Connect to Zoho CRM and Zoho Books and check the prerequisites before anything is written.

`connect` verifies the credentials against both sides, refuses a CRM edition below Professional
and, when the CRM has multi-currency on, a CRM base currency that differs from the Books base
currency, and checks that the CRM user chosen to own the records crmbooks creates in the CRM
(`--crm-owner`) exists and is active. Only then are the non-secret settings stored (the
Connection row) and the secrets saved (Prefect Secret blocks, unless they come from the
environment).

Every failure is raised as a :class:`ConnectError` (or its subclass
:class:`PrerequisiteError`) whose message is one sentence saying what to fix, so the CLI can
print it and exit 2 without a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from crmbooks.connectors.config import ZohoConfig
from crmbooks.connectors.errors import AuthError, FatalError, RetriableError, ZohoError
from crmbooks.connectors.zoho_books import BooksClient
from crmbooks.connectors.zoho_crm import CrmClient
from crmbooks.store import Store
from crmbooks.sync.check import figure_problems
from crmbooks.sync.figures import FIGURE_KINDS

# Zoho CRM editions ranked from the smallest plan to the largest (Free, Standard/Starter,
# Professional, Enterprise/Zoho One, Ultimate/CRM Plus); the Books integration needs
# Professional or above. The CRM `org` call reports the edition as
# license_details.paid_type in lower case ("professional", "enterprise", ...).
EDITION_RANK = {"free": 0, "standard": 1, "starter": 1, "professional": 2, "enterprise": 3,
                "zohoone": 3, "zoho one": 3, "ultimate": 4, "crmplus": 4, "crm plus": 4}
MINIMUM_EDITION = "professional"
# Connect is interactive: a wrong URL should fail in seconds, not after the five backed-off
# retries a scheduled run deserves.
CONNECT_RETRIES = 1


class ConnectError(RuntimeError):
    """Credentials, URLs or organization are wrong; the message says what to fix."""


class PrerequisiteError(ConnectError):
    """A prerequisite is not met (CRM edition, base currencies); the message says what to
    change."""


@dataclass
class ConnectionCheck:
    """What `connect` verified on each side (extra Books organizations sync one way, CRM →
    Books)."""

    crm_org: dict
    books_org: dict
    extra_books_orgs: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        """One line per side, for the terminal."""
        crm = self.crm_org
        lines = [f"CRM: {crm.get('name')} ({crm.get('edition')} edition, base currency "
                 f"{crm.get('currency')}, multi-currency "
                 f"{'on' if crm.get('multi_currency') else 'off'})"]
        owner = crm.get("owner")
        lines.append("CRM records crmbooks creates are owned by " + (
            f"{owner.get('name')} <{owner.get('email')}>" if owner
            else "the connecting user (the owner of the OAuth grant)"))
        for label, books in [("Books", self.books_org)] + [
                ("Books (extra, one-way)", org) for org in self.extra_books_orgs]:
            lines.append(f"{label}: {books.get('name')} (organization "
                         f"{books.get('organization_id')}, base currency {books.get('currency')}, "
                         f"{books.get('email') or 'no email'}, {books.get('country') or '?'})")
        return "\n".join(lines)


def check_prerequisites(crm_org: dict, books_org: dict) -> None:
    """Raise PrerequisiteError with a clear message when a prerequisite fails: a CRM edition
    below Professional, or CRM multi-currency on with a base currency other than Books'."""
    edition = str(crm_org.get("edition") or "").strip().lower()
    if EDITION_RANK.get(edition, -1) < EDITION_RANK[MINIMUM_EDITION]:
        raise PrerequisiteError(
            f"the Zoho CRM edition is '{crm_org.get('edition') or 'unknown'}', but the Books "
            "integration needs Professional or above: upgrade the CRM edition, then connect again"
        )
    crm_currency, books_currency = crm_org.get("currency"), books_org.get("currency")
    if crm_org.get("multi_currency") and crm_currency != books_currency:
        raise PrerequisiteError(
            f"CRM multi-currency is on with base currency {crm_currency}, but the Books "
            f"organization {books_org.get('organization_id')} has base currency "
            f"{books_currency}: they must be equal; connect a Books organization in "
            f"{crm_currency}"
        )


def verify(config: ZohoConfig, extra_org_ids: Sequence[str] = (),
           crm_owner: str | None = None) -> ConnectionCheck:
    """Call both sides with these credentials and check the prerequisites; nothing is written
    anywhere.

    `crm_owner`: the email of the CRM user who will own every record crmbooks creates in the
    CRM; it must be an active user, and is kept as ``crm_org["owner"]`` ({id, email, name}).
    Without it nothing is looked up: Zoho makes the grant's user, the one connecting, the
    owner of what it creates.

    Raises ConnectError (wrong credentials, URL, organization or owner) or PrerequisiteError,
    each with a message that says what to fix.
    """
    config = config.model_copy(update={"max_retries": min(config.max_retries,
                                                          CONNECT_RETRIES)})
    crm = CrmClient(config)
    try:
        crm_org = normalise_crm_org(_ask("Zoho CRM", crm.org))
        if crm_owner is not None:
            crm_org["owner"] = find_owner(_ask("Zoho CRM", lambda: crm.users("AllUsers")),
                                          crm_owner)
        check_figure_fields({module: _ask("Zoho CRM", lambda m=module: crm.fields(m))
                             for module in FIGURE_KINDS.values()})
    finally:
        crm.close()
    books_orgs = [_books_org(config, org_id)
                  for org_id in [config.books_org_id, *extra_org_ids]]
    for books_org in books_orgs:
        check_prerequisites(crm_org, books_org)
    return ConnectionCheck(crm_org, books_orgs[0], books_orgs[1:])


def check_figure_fields(fields: dict[str, list[dict]]) -> None:
    """PrerequisiteError naming every CRM field of the accounting figures that is missing,
    of the wrong type or read-only, given {CRM module: its live fields}."""
    problems = [p for module, live in fields.items() for p in figure_problems(module, live)]
    if problems:
        lines = "\n".join(f"- {p.message} — {p.hint}" for p in problems)
        raise PrerequisiteError(f"the CRM fields for the Books figures do not fit "
                                f"({len(problems)} problem(s)):\n{lines}")


def find_owner(users: list[dict], email: str) -> dict:
    """The active CRM user with this email (Zoho compares emails case-insensitively) as
    {id, email, name}; ConnectError when no user has it or that user is not active."""
    wanted = email.strip().casefold()
    if "@" not in wanted:
        raise ConnectError(f"--crm-owner {email!r} is not an email address: give the email "
                           "of an active CRM user")
    found = next((u for u in users if str(u.get("email") or "").casefold() == wanted), None)
    if found is None:
        raise ConnectError(f"no Zoho CRM user has the email {email.strip()}: give --crm-owner "
                           "the email of an active user (CRM Setup > Users)")
    if found.get("status") != "active":
        raise ConnectError(f"the Zoho CRM user {found.get('email')} is {found.get('status')}, "
                           "not active: give --crm-owner an active user, or reactivate them")
    return {"id": str(found["id"]), "email": found.get("email"),
            "name": found.get("full_name") or found.get("email")}


def _books_org(config: ZohoConfig, org_id: str | None) -> dict:
    """One Books organization, verified; an unknown id names the ids this login can use."""
    books = BooksClient(config.model_copy(update={"books_org_id": org_id}))
    try:
        try:
            return normalise_books_org(books.organization())
        except FatalError as exc:
            if exc.endpoint.startswith("POST /oauth"):
                raise
            known = _ask("Zoho Books", books.organizations)
            if any(str(o.get("organization_id")) == str(org_id) for o in known):
                raise
            choices = ", ".join(f"{o.get('organization_id')} ({o.get('name')})"
                                for o in known) or "none"
            raise ConnectError(
                f"the Books organization {org_id} is not one this Zoho login can use: pass "
                f"--books-org with one of: {choices}") from None
    except ZohoError as exc:
        raise ConnectError(describe(exc, "Zoho Books")) from None
    finally:
        books.close()


def _ask(side: str, call):
    """Run one verification call; a connector error becomes a ConnectError naming the side."""
    try:
        return call()
    except ZohoError as exc:
        raise ConnectError(describe(exc, side)) from None


def describe(exc: ZohoError, side: str) -> str:
    """A connector error during connect as one sentence saying what to fix."""
    text = str(exc)
    if isinstance(exc, RetriableError):
        if exc.status is None:  # never reached the server
            return (f"{side} could not be reached ({exc.endpoint or 'no answer'}): check --dc "
                    "or --api-url/--accounts-url and the network")
        return f"{side} is not answering normally right now ({text}): try again in a minute"
    if isinstance(exc, AuthError):
        return f"{side} refused the credentials: {text}"
    return f"{side}: {text}"


def normalise_crm_org(org: dict) -> dict:
    """The CRM `org` object reduced to what connecting and the prerequisites need.

    Zoho names them company_name, iso_code (the base currency), mc_status (multi-currency on)
    and license_details.paid_type (the edition); the other names are accepted as they are.
    """
    license_details = org.get("license_details") or {}
    return {
        "id": str(org.get("id") or ""),
        "name": org.get("company_name") or org.get("name"),
        "currency": org.get("iso_code") or org.get("currency"),
        "multi_currency": bool(org.get("mc_status")),
        "edition": license_details.get("paid_type") or org.get("edition"),
        "country": org.get("country"),
    }


def normalise_books_org(org: dict) -> dict:
    """The Books organization reduced to what connecting shares with the CRM side and what
    the prerequisites compare."""
    return {
        "organization_id": str(org.get("organization_id") or ""),
        "name": org.get("name"),
        "email": org.get("email"),
        "country": org.get("country"),
        "currency": org.get("currency_code"),
        # Which month the fiscal year starts (0 = January): the "invoiced this fiscal year"
        # figure needs it on every run, so connect keeps it.
        "fiscal_year_start_month": org.get("fiscal_year_start_month"),
    }


def store_connection(store: Store, config: ZohoConfig, check: ConnectionCheck, *,
                     dc: str | None = None, extra_org_ids: list[str] | None = None,
                     name: str = "default", books_requests_per_minute: int | None = None,
                     ) -> None:
    """Persist the verified, non-secret connection settings (with the Books organization's
    name, email and country, shared with the CRM side; extra orgs under books_org.extra).

    `books_requests_per_minute`: the Books limit the clients pace at, given only for emulators
    (they may be started with another limit than real Books'); otherwise 100, Zoho's.
    """
    books_org = dict(check.books_org)
    if books_requests_per_minute:
        books_org["requests_per_minute"] = books_requests_per_minute
    if check.extra_books_orgs:
        books_org["extra"] = list(check.extra_books_orgs)
    store.save_connection(
        name, dc=dc, api_url=config.api_url, accounts_url=config.accounts_url,
        crm_api_url=config.crm_api_url, books_api_url=config.books_api_url,
        client_id=config.client_id, books_org_id=config.books_org_id,
        extra_books_org_ids=list(extra_org_ids or []), crm_org=check.crm_org,
        books_org=books_org,
    )


#: The settings a new connection starts with (a module configured before keeps its own).
NEW_CONNECTION_SETTINGS = {module: {"duplicates": "review"}
                           for module in ("customers", "vendors", "items")}


def seed_new_connection(store: Store, org_id: str) -> list[str]:
    """Save the starting settings of a new connection's modules; the modules saved.

    Possible duplicates then wait for a person's decision instead of being skipped: a module
    never configured otherwise runs on the model defaults, which keep what crmbooks did
    before the review queue existed.
    """
    org_store = Store(store.engine, org_id=org_id)
    saved = []
    for module, settings in NEW_CONNECTION_SETTINGS.items():
        if org_store.active_settings(module) is None:
            org_store.save_settings(module, dict(settings), note="settings of a new connection")
            saved.append(module)
    return saved


def connect_to_emulator(server) -> Store:
    """Connect to a running emulator exactly as `crmbooks connect` does, with the emulator's
    own credentials (the secrets go to the environment, as an operator would set them).

    Used by `crmbooks demo` and `up`, the benchmarks and the tests; returns the store of the
    connected Books organization.
    """
    import os

    from crmbooks.runtime import open_store, reset_runtime_cache

    config = server.emu.config
    os.environ["CRMBOOKS_CLIENT_SECRET"] = config.client_secret
    os.environ["CRMBOOKS_REFRESH_TOKEN"] = config.refresh_token
    zoho = ZohoConfig(accounts_url=server.base_url, api_url=server.base_url,
                      client_id=config.client_id, client_secret=config.client_secret,
                      refresh_token=config.refresh_token, books_org_id=config.books_org_ids[0])
    reset_runtime_cache()
    store = open_store()
    # Pace at the limit these emulators enforce (the demo starts them with a higher one than
    # real Books' 100 a minute, which would only make it wait).
    store_connection(store, zoho, verify(zoho),
                     books_requests_per_minute=config.books_rate_limit)
    return Store(store.engine, org_id=zoho.books_org_id)


#: The customers settings of `crmbooks demo` and of `crmbooks up` on the emulators.
DEMO_CUSTOMERS = {"crm_module": "accounts+contacts", "scope": "both", "duplicates": "skip"}


def connect_demo(server) -> Store:
    """Connect to in-process emulators with their demo credentials and the demo settings.

    What `crmbooks demo` and `crmbooks up` (with no connection stored) run against; returns the
    store of the connected Books organization.
    """
    # Settings belong to a Books organization, like everything a run reads.
    org_store = connect_to_emulator(server)
    org_store.save_settings("customers", dict(DEMO_CUSTOMERS))
    return org_store
