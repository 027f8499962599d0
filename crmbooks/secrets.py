"""Secrets at the edge: the OAuth client secret and refresh token.

They are read once, when the clients are built, from the environment (`CRMBOOKS_CLIENT_SECRET`,
`CRMBOOKS_REFRESH_TOKEN`) or else from Prefect Secret blocks, and never reach the settings table,
a log line, an artifact or a flow-run parameter. Prefect redacts only its own API key
(PREFECT_API_KEY) from logs, so `install_redaction` adds a logging filter that masks every
secret value we know of, wherever a log record comes from.
"""

from __future__ import annotations

import logging
import os
import threading

from pydantic import SecretStr

# name -> (environment variable, Prefect Secret block)
SECRETS = {
    "client_secret": ("CRMBOOKS_CLIENT_SECRET", "crmbooks-client-secret"),
    "refresh_token": ("CRMBOOKS_REFRESH_TOKEN", "crmbooks-refresh-token"),
}

_known_values: set[str] = set()
_lock = threading.Lock()


class SecretMissing(LookupError):
    """A secret is neither in the environment nor in a Prefect Secret block."""


def block_name(name: str, connection: str = "default") -> str:
    """The Prefect Secret block that holds `name` for a connection."""
    base = SECRETS[name][1]
    return base if connection == "default" else f"{base}-{connection}"


def load_secret(name: str, connection: str = "default") -> SecretStr:
    """Read one secret: the environment first, then the Prefect Secret block."""
    env_var = SECRETS[name][0]
    value = os.environ.get(env_var)
    if not value:
        value = load_block(block_name(name, connection))
    if not value:
        raise SecretMissing(
            f"no {name.replace('_', ' ')} found: set {env_var} or run `crmbooks connect` again"
        )
    remember(value)
    return SecretStr(value)


def save_secrets(values: dict[str, SecretStr], connection: str = "default") -> str:
    """Store secrets as Prefect Secret blocks; returns where they went, for the operator."""
    from prefect.blocks.system import Secret

    for name, value in values.items():
        remember(value.get_secret_value())
        Secret(value=value.get_secret_value()).save(block_name(name, connection),
                                                    overwrite=True)
    return "Prefect Secret blocks " + ", ".join(block_name(n, connection) for n in values)


def load_block(block: str) -> str | None:
    """The value of a Prefect Secret block, or None when no block has that name."""
    try:
        from prefect.blocks.system import Secret

        return Secret.load(block).get()
    except ValueError:  # Prefect: "Unable to find block document named …"
        return None


def remember(value: str) -> None:
    """Add a value to the set that the logging filter masks."""
    if value and len(value) >= 6:
        with _lock:
            _known_values.add(value)


def redact(text: str) -> str:
    """Replace every known secret value in `text` with ***."""
    with _lock:
        values = sorted(_known_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, "***")
    return text


class RedactingFilter(logging.Filter):
    """Masks known secret values in a log record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _known_values:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


_installed = False


def install_redaction() -> None:
    """Attach the redacting filter to every handler of the root and Prefect loggers (once)."""
    global _installed
    if _installed:
        return
    _installed = True
    flt = RedactingFilter()
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs", "httpx", "crmbooks"):
        logger = logging.getLogger(name)
        logger.addFilter(flt)
        for handler in logger.handlers:
            handler.addFilter(flt)
