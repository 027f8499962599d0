"""Alerts: a Prefect notification block and a Prefect automation that tell someone when a
crmbooks run fails, crashes, or ends with failed records.

A run with failed records ends Failed with a one-line message that gives its counts and its
first failure reasons (tasks/run.py), so one automation on the flow-run events
`prefect.flow-run.Failed` and `prefect.flow-run.Crashed` of crmbooks' flows covers all three
cases; its notification sends Prefect's templated run name, state message and UI link.

Everything lives on the Prefect server (no crmbooks table): the block is named
`crmbooks-alert-NAME` and the automation `crmbooks-alert-NAME`, which is how `list` and
`remove` find them. Prefect OSS has no SMTP notification block, so email goes through
Apprise's `mailto://` scheme inside the Apprise-backed Slack block type (which hands any
non-Slack URL to Apprise); the block's name says it is an email alert.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

#: Every alert's block and automation are named with this prefix.
PREFIX = "crmbooks-alert-"
#: The flow-run events an alert fires on (Failed covers a run with failed records).
EVENTS = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed")
#: The SMTP password comes from the environment, never from the command line.
SMTP_PASSWORD_ENV = "CRMBOOKS_SMTP_PASSWORD"

SUBJECT = "crmbooks: {{ flow_run.name }} ended {{ flow_run.state.name }}"
BODY = ("crmbooks run {{ flow_run.name }} ended {{ flow_run.state.name }}: "
        "{{ flow_run.state.message }}\n"
        "Open it in the Prefect UI: {{ flow_run|ui_url }}")

#: kind -> the Prefect block type it creates.
KINDS = {"slack": "slack-webhook", "teams": "ms-teams-webhook", "email": "slack-webhook",
         "webhook": "custom-webhook"}


class AlertError(ValueError):
    """A bad alert request (target, name, server); the message says what to do."""


@dataclass(frozen=True)
class Target:
    """Where an alert goes: `kind` (slack, teams, email, webhook) and its address."""

    kind: str
    address: str  # a webhook URL, or an email address
    smtp: str | None = None  # HOST[:PORT], email only
    smtp_user: str | None = None


def check_name(name: str) -> str:
    """The alert's name, checked: lowercase letters, digits and dashes (a Prefect block name)."""
    if not name or not all(c.islower() or c.isdigit() or c == "-" for c in name) \
            or name.startswith("-") or len(name) > 60:
        raise AlertError(f"the alert name {name!r} must be 1 to 60 lowercase letters, digits "
                         "or dashes, such as `ops-slack`")
    return name


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise AlertError(f"{what} {url!r} is not an http(s) URL: give the full address, such "
                         "as https://hooks.example.com/…")
    return url


def check_target(target: Target) -> Target:
    """The target checked before anything is created (AlertError otherwise)."""
    if target.kind == "slack":
        _check_url(target.address, "the Slack webhook")
        if urlsplit(target.address).hostname not in ("hooks.slack.com", "hooks.slack-gov.com"):
            raise AlertError(f"the Slack webhook {target.address!r} is not a Slack incoming "
                             "webhook (https://hooks.slack.com/services/…): use --webhook for "
                             "another service")
    elif target.kind == "teams":
        _check_url(target.address, "the Teams webhook")
        from apprise.plugins.workflows import NotifyWorkflows

        if not NotifyWorkflows.parse_native_url(target.address):
            raise AlertError(f"the Teams webhook {target.address!r} is not a Power Automate "
                             "workflow URL (https://…logic.azure.com…/workflows/…)")
    elif target.kind == "webhook":
        _check_url(target.address, "the webhook")
    elif target.kind == "email":
        local, _, domain = target.address.partition("@")
        if not local or "." not in domain or " " in target.address:
            raise AlertError(f"{target.address!r} is not an email address")
        if not target.smtp:
            raise AlertError("an email alert needs its mail server: add --smtp HOST[:PORT]")
        host, _, port = target.smtp.partition(":")
        if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
            raise AlertError(f"--smtp {target.smtp!r} is not HOST or HOST:PORT")
        if not _apprise_accepts(_mailto(target)):
            raise AlertError(f"the mail server {target.smtp!r} and address "
                             f"{target.address!r} do not make a usable email target")
    else:
        raise AlertError(f"unknown alert kind {target.kind!r}")
    return target


def _apprise_accepts(url: str) -> bool:
    from apprise import Apprise

    return bool(Apprise().add(url))


def _mailto(target: Target) -> str:
    """Apprise's email URL: `mailtos://` (TLS) on port 465, `mailto://` (STARTTLS when the
    server offers it) otherwise; the password from CRMBOOKS_SMTP_PASSWORD."""
    host, _, port = (target.smtp or "").partition(":")
    scheme = "mailtos" if port == "465" else "mailto"
    login = ""
    if target.smtp_user:
        password = os.environ.get(SMTP_PASSWORD_ENV, "")
        login = quote(target.smtp_user, safe="") + (
            f":{quote(password, safe='')}" if password else "") + "@"
    sender = target.smtp_user if target.smtp_user and "@" in target.smtp_user \
        else f"crmbooks@{host}"
    return (f"{scheme}://{login}{host}{':' + port if port else ''}"
            f"?to={quote(target.address, safe='@')}&from={quote(sender, safe='@')}")


def _block(name: str, target: Target):
    """The Prefect notification block of a target (not saved yet)."""
    from prefect.blocks.notifications import (
        CustomWebhookNotificationBlock,
        MicrosoftTeamsWebhook,
        SlackWebhook,
    )

    if target.kind == "slack":
        return SlackWebhook(url=target.address, notify_type="failure")
    if target.kind == "teams":
        return MicrosoftTeamsWebhook(url=target.address, notify_type="failure")
    if target.kind == "email":
        return SlackWebhook(url=_mailto(target), notify_type="failure")
    # A Slack-shaped JSON body ("text"), which most chat webhooks and scripts read.
    return CustomWebhookNotificationBlock(
        name=name, url=target.address, method="POST",
        json_data={"text": "{{body}}", "subject": "{{subject}}", "alert": "{{name}}"})


def shown(target_url: str) -> str:
    """A webhook address without its secret path or query: `https://hooks.slack.com/…`."""
    parts = urlsplit(target_url)
    if parts.scheme in ("mailto", "mailtos"):
        to = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("to", "")
        return f"email to {to} via {parts.hostname}"
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}/…"


def _client(api_url: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    class _Bound:
        """A sync Prefect client on `api_url`, whatever the process's settings say."""

        def __enter__(self):
            self._settings = temporary_settings(updates={PREFECT_API_URL: api_url})
            self._settings.__enter__()  # noqa: PLC2801
            self._client = get_client(sync_client=True)
            return self._client.__enter__()  # noqa: PLC2801

        def __exit__(self, *exc):
            try:
                self._client.__exit__(*exc)
            finally:
                self._settings.__exit__(*exc)

    return _Bound()


def add(api_url: str, name: str, target: Target, flow_names: list[str]) -> dict:
    """Create the alert's block and automation on the Prefect server at `api_url`; returns
    what `list` shows of it. Refused (AlertError, nothing created) if the name is taken.
    If the automation cannot be created, the block just saved is deleted again."""
    from prefect.automations import Automation, EventTrigger, SendNotification

    check_name(name)
    check_target(target)
    full = PREFIX + name
    with _client(api_url) as client:
        if client.read_automations_by_name(full) or _block_document(client, full):
            raise AlertError(f"an alert named {name!r} exists already: remove it with "
                             f"`crmbooks alerts remove {name}` or choose another --name")
    block = _block(name, target)
    with _client(api_url):
        block_id = block.save(full, overwrite=False)
    automation = Automation(
        name=full,
        description=f"crmbooks: tell {shown(_address(block))} when a crmbooks run fails, "
                    "crashes or ends with failed records",
        trigger=EventTrigger(
            expect=set(EVENTS),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow",
                           "prefect.resource.name": sorted(flow_names)},
            posture="Reactive", threshold=1),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)])
    try:
        with _client(api_url):
            automation.create()
    except Exception:
        with _client(api_url) as client:
            client.delete_block_document(block_id)
        raise
    return {"name": name, "kind": target.kind, "target": shown(_address(block)),
            "enabled": True}


def _address(block) -> str:
    url = block.url
    return url.get_secret_value() if hasattr(url, "get_secret_value") else url


def _block_document(client, full: str):
    """The block document named `full` of any alert block type, or None."""
    from prefect.exceptions import ObjectNotFound

    for slug in set(KINDS.values()):
        try:
            return client.read_block_document_by_name(full, block_type_slug=slug)
        except ObjectNotFound:
            continue
    return None


def list_alerts(api_url: str) -> list[dict]:
    """The alerts on the Prefect server at `api_url`: name, kind, target (its secret parts
    left out) and whether the automation is enabled."""
    alerts = []
    with _client(api_url) as client:
        for automation in client.read_automations():
            if not automation.name.startswith(PREFIX):
                continue
            document = _block_document(client, automation.name)
            slug = document.block_type.slug if document is not None else None
            url = ""
            if document is not None:
                url = str(document.data.get("url") or "")
            kind = next((k for k, s in KINDS.items() if s == slug), "missing")
            if kind == "slack" and url.startswith("mailto"):
                kind = "email"
            alerts.append({"name": automation.name.removeprefix(PREFIX), "kind": kind,
                           "target": shown(url) if url else
                           "its notification block was deleted",
                           "enabled": bool(automation.enabled)})
    return sorted(alerts, key=lambda a: a["name"])


def remove(api_url: str, name: str) -> None:
    """Delete the alert's automation and block (AlertError when there is no such alert)."""
    full = PREFIX + name
    with _client(api_url) as client:
        automations = client.read_automations_by_name(full)
        document = _block_document(client, full)
        if not automations and document is None:
            raise AlertError(f"no alert named {name!r}: `crmbooks alerts list` shows them")
        for automation in automations:
            client.delete_automation(automation.id)
        if document is not None:
            client.delete_block_document(document.id)
