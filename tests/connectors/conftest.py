"""Connector clients pointed at the session emulator (fixtures from tests/conftest.py)."""

from __future__ import annotations

import pytest

from support.clients import make_books, make_crm


@pytest.fixture
def crm_client(emu_reset):
    """CrmClient on fresh small seeded data."""
    client = make_crm(emu_reset)
    yield client
    client.http.client.close()


@pytest.fixture
def books_client(emu_reset):
    """BooksClient on fresh small seeded data."""
    client = make_books(emu_reset)
    yield client
    client.http.client.close()
