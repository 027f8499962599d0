"""Local emulators of Zoho Accounts, Zoho CRM and Zoho Books: the embedded default and the test
bed of crmbooks.

Layers, each importing only those below it (no import loops):

- `emulators.server`: the threaded uvicorn server (`EmulatorServer`, `serve_forever`);
- `emulators.app`: `Emulator`, which composes the products into one ASGI app, and
  `emulators.controls`, its test controls under `/__emulator__/`;
- `emulators.crm`, `emulators.books`, `emulators.accounts`: the products, which never import
  one another;
- `emulators.common`: configuration, sizes, faults, traffic limits and counters, the request
  log, error envelopes, the clock and the document-type declarations.

Code outside the emulators imports what it needs from here.
"""

from emulators.app import Emulator
from emulators.common.config import EmulatorConfig
from emulators.common.documents import DocumentType, StatusAction
from emulators.common.envelopes import ApiError, books_error, crm_error
from emulators.common.faults import Faults
from emulators.common.sizes import Sizes
from emulators.server import EmulatorServer, serve_forever

__all__ = [
    "ApiError",
    "DocumentType",
    "Emulator",
    "EmulatorConfig",
    "EmulatorServer",
    "Faults",
    "Sizes",
    "StatusAction",
    "books_error",
    "crm_error",
    "serve_forever",
]
