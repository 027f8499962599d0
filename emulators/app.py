"""The one emulated Zoho installation: Accounts, CRM and Books composed into one ASGI app.

One `Emulator` serves Zoho Accounts (`/oauth/v2/...`), Zoho CRM (`/crm/v2..v8/...`) and Zoho Books
(`/books/v3/...` and the legacy `/api/v3/...`) on one base URL; their paths do not collide. The
products live in `emulators.accounts`, `emulators.crm` and `emulators.books`, and share only
`emulators.common`; this module wires them together with what spans them: the lock around all
state, who may call (`authorize`), what goes wrong (faults, limits), what was called (counters and
the request log), the document types both products serve, and the test controls under
`/__emulator__/`, a prefix the real APIs do not have.
"""

from __future__ import annotations

import random
import threading
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request

from emulators.accounts import TokenStore, accounts_router
from emulators.books import BooksEmulator
from emulators.common.clock import ServerDate
from emulators.common.config import EmulatorConfig
from emulators.common.documents import BUILT_IN, DocumentType
from emulators.common.envelopes import Product, install_error_handlers
from emulators.common.faults import FaultDice, Faults
from emulators.common.sizes import Sizes
from emulators.common.stats import Stats
from emulators.common.traffic import Limits, TrafficMiddleware
from emulators.controls import control_router
from emulators.crm import CrmEmulator


class Emulator:
    """One emulated Zoho installation: Accounts + CRM + Books, with state, faults and limits."""

    def __init__(self, config: EmulatorConfig | None = None):
        self.config = config or EmulatorConfig()
        self.lock = threading.RLock()
        self.base_url = "http://127.0.0.1"
        self.tokens = TokenStore(self.config)
        self.limits = Limits(self.config)
        self.stats = Stats()
        self._dice = FaultDice()
        self.clock_ahead = timedelta(0)
        # Document types declared at run time, in declaration order (kept across reset).
        self.document_types: list[DocumentType] = []
        self._apps: weakref.WeakSet[FastAPI] = weakref.WeakSet()
        self.crm = CrmEmulator(self)
        self.books = BooksEmulator(self)
        self.reset()

    @property
    def faults(self) -> Faults:
        """The injected faults now in force."""
        return self._dice.faults

    def now(self) -> datetime:
        """The emulator's clock: UTC, whole seconds (Zoho's timestamps have no fractions)."""
        return (datetime.now(UTC) + self.clock_ahead).replace(microsecond=0)

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward: tests make time pass without waiting for it.
        Every stamp and Date header the emulators write follow it; `reset` puts it back."""
        self.clock_ahead += timedelta(seconds=seconds)

    def reset(self, seed: int | None = None, sizes: Sizes | None = None) -> None:
        """Fresh sample data from the seed; tokens stay valid, counters are zeroed. Document
        types declared at run time are kept, their modules and resources emptied like the
        others."""
        with self.lock:
            if seed is not None:
                self.config.seed = seed
            if sizes is not None:
                self.config.sizes = sizes
            self.clock_ahead = timedelta(0)
            rng = random.Random(self.config.seed)
            self.crm.seed(rng, self.config.sizes)
            self.books.seed(rng, self.config.sizes, crm=self.crm)
            self.stats.clear()
            # The rate windows too: requests of a test before the reset must not count
            # against the limits a test sets after it.
            self.limits.clear()

    def set_faults(self, faults: Faults) -> None:
        """Replace the injected faults; their random stream restarts from `faults.seed`."""
        self._dice.set(faults)

    def draw_fault(self) -> str | None:
        """Decide, from the seeded stream, which fault (if any) hits the next API request."""
        return self._dice.draw()

    def authorize(self, request: Request, product: Product, scope: str) -> None:
        """Check the caller's access token and scope; raise the product's 401 otherwise."""
        header = request.headers.get("authorization", "")
        with self.lock:
            self.tokens.check(header, product, scope, self.faults.expire_tokens_after)

    def add_document_type(self, doc: DocumentType | dict[str, Any]) -> DocumentType:
        """Serve one more kind of document on both products: a Books transaction resource
        and its CRM module with a line-item subform, both empty (a `DocumentType`, or its
        JSON form, see `DocumentType.from_dict`). Apps already built get the new Books
        routes at once. The type is kept across `reset`. Declaring the same type again
        changes nothing; a clash with another type is a ValueError."""
        if not isinstance(doc, DocumentType):
            doc = DocumentType.from_dict(doc)
        else:
            doc.check()
        with self.lock:
            if doc in self.document_types:
                return doc
            self._check_free(doc)
            self.crm.add_document_type(doc)
            routes = self.books.add_document_type(doc)
            self.document_types.append(doc)
            for app in list(self._apps):
                for method, path, handler in routes:
                    app.router.add_api_route(path, handler, methods=[method],
                                             include_in_schema=False)
        return doc

    def _check_free(self, doc: DocumentType) -> None:
        """A new type may not reuse a name either product already serves (checked before
        either product changes, so a refused declaration leaves no trace)."""
        if any(d.resource == doc.resource or d.crm_module == doc.crm_module
               for d in (*BUILT_IN, *self.document_types)):
            raise ValueError(f"a document type named {doc.resource} or {doc.crm_module} is "
                             "already declared")
        if self.crm.catalogue.resolve(doc.crm_module) is not None:
            raise ValueError(f"the CRM already has a module {doc.crm_module}")
        names = {doc.resource, doc.key}
        if any(names & {r.plural, r.key} for r in self.books.resources):
            raise ValueError(f"Books already serves a resource named {doc.resource} or "
                             f"{doc.key}")

    def app(self) -> ServerDate:
        """The ASGI app serving all three products and the test controls."""
        app = FastAPI(title="Zoho emulator (crmbooks)", docs_url=None, redoc_url=None,
                      openapi_url=None)
        app.include_router(accounts_router(self))
        app.include_router(self.crm.router())
        app.include_router(self.books.router())
        app.include_router(control_router(self))
        install_error_handlers(app)
        self._apps.add(app)
        return ServerDate(TrafficMiddleware(app, self), lambda: self.now())
