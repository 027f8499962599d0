"""The store's own errors, in a module of their own so that every part of the store (and the
schema machinery under the engine) can raise them without importing one another."""

from __future__ import annotations


class StoreError(ValueError):
    """A store operation was called with data it cannot accept (caller's bug)."""


class DatabaseTooNew(StoreError):
    """The state database carries a schema revision this crmbooks does not know.

    A newer crmbooks upgraded it; this one would misread it, so it refuses to open it and
    writes nothing to it.
    """

    def __init__(self, revision: str):
        super().__init__(
            f"the state database was upgraded by a newer crmbooks (revision {revision}); "
            "upgrade crmbooks or point CRMBOOKS_DATABASE_URL at another database")
        self.revision = revision

    def __reduce__(self):
        # Exception pickles its args only, which are not this constructor's arguments.
        return (type(self), (self.revision,))



class DatabaseUnavailable(StoreError):
    """The state database cannot be opened: its URL does not parse, names a driver crmbooks
    does not have, or its server or file cannot be reached. The message names where the URL
    comes from (CRMBOOKS_DATABASE_URL, or the SQLite file under CRMBOOKS_HOME) and what to
    fix; it never carries the URL's password."""

    def __init__(self, message: str):
        super().__init__(message)
