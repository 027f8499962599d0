"""crmbooks state store: links, cursors, run history, failures, settings (sqlmodel)."""

from crmbooks.store.engine import crmbooks_home, database_url, make_engine
from crmbooks.store.repo import Store, StoreError

__all__ = ["Store", "StoreError", "crmbooks_home", "database_url", "make_engine"]
