"""The Zoho Books emulator: `BooksEmulator` (organizations, records, webhooks) and its routes
under /books/v3 and /api/v3. It shares only `emulators.common` with the other products."""

from emulators.books.emulator import BooksEmulator

__all__ = ["BooksEmulator"]
