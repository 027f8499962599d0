"""Configuration: the saved versions of each module's settings, and the connection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, select

from crmbooks.store.base import StoreBase
from crmbooks.store.errors import StoreError
from crmbooks.store.jsonsafe import SECRET_KEY, json_safe
from crmbooks.store.tables import Connection, SettingsVersion, utcnow

#: The connection `crmbooks connect` saves, whose Books organization is the primary one.
DEFAULT_CONNECTION = "default"


def looks_secret(key: str) -> bool:
    """True for field names that look like they hold a secret."""
    return bool(SECRET_KEY.search(key))


def primary_org_id(session: Session) -> str | None:
    """The primary Books organization: the one of the default connection (None before
    `crmbooks connect`)."""
    return session.exec(select(Connection.books_org_id).where(
        Connection.name == DEFAULT_CONNECTION)).first() or None


class ConfigStore(StoreBase):
    """Settings versions of the store's Books organization, and the named connections."""

    def save_settings(self, module: str, settings: Mapping[str, Any], *,
                      note: str | None = None) -> int:
        """Store a new active version of ``module``'s settings; return its version number.

        The previous version is kept (inactive). Runs read the active version when they
        start, so an edit applies from the next run, never to a run in progress.
        """
        with self.session() as s:
            current = s.exec(select(func.max(SettingsVersion.version)).where(
                SettingsVersion.org_id == self.org_id, SettingsVersion.module == module
            )).one()
            version = (current or 0) + 1
            s.exec(update(SettingsVersion).where(
                SettingsVersion.org_id == self.org_id, SettingsVersion.module == module
            ).values(active=False))
            s.add(SettingsVersion(org_id=self.org_id, module=module, version=version,
                                  settings=json_safe(dict(settings)), active=True, note=note))
            s.commit()
        return version

    def active_settings(self, module: str) -> tuple[int, dict] | None:
        """The active (version, settings) of ``module``, or None if never configured."""
        with self.session() as s:
            row = s.exec(select(SettingsVersion).where(
                SettingsVersion.org_id == self.org_id, SettingsVersion.module == module,
                SettingsVersion.active == True,  # noqa: E712
            ).order_by(SettingsVersion.version.desc())).first()
        return (row.version, dict(row.settings or {})) if row else None

    def settings_history(self, module: str) -> list[SettingsVersion]:
        """All saved versions of ``module``'s settings, newest first."""
        with self.session() as s:
            return list(s.exec(select(SettingsVersion).where(
                SettingsVersion.org_id == self.org_id, SettingsVersion.module == module
            ).order_by(SettingsVersion.version.desc())).all())

    def save_connection(self, name: str = DEFAULT_CONNECTION, **fields: Any) -> Connection:
        """Create or update the named connection (non-secret fields only)."""
        bad = [k for k in fields if k not in Connection.model_fields]
        if bad:
            raise StoreError(f"unknown connection fields: {', '.join(bad)}")
        secret = [k for k in fields if k != "client_id" and looks_secret(k)]
        if secret:
            raise StoreError(f"secrets are not stored in the database: {', '.join(secret)}")
        with self.session() as s:
            conn = s.exec(select(Connection).where(Connection.name == name)).first()
            conn = conn or Connection(name=name)
            for key, value in fields.items():
                setattr(conn, key, json_safe(value) if isinstance(value, (dict, list)) else value)
            conn.updated_at = utcnow()
            s.add(conn)
            s.commit()
        return conn

    def connection(self, name: str = DEFAULT_CONNECTION) -> Connection | None:
        """The named connection, or None before ``crmbooks connect``."""
        with self.session() as s:
            return s.exec(select(Connection).where(Connection.name == name)).first()
