"""The bad cases, each failing fast with a message that says what to fix."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from crmbooks.connectors.errors import AuthError, FatalError
from support.clients import make_books, make_crm


def test_wrong_client_secret(emu_reset):
    crm = make_crm(emu_reset, client_secret=SecretStr("wrong"))
    with pytest.raises(FatalError, match="client id or client secret"):
        list(crm.iter_records("Accounts", ["Account_Name"]))
    assert "wrong" not in str(crm.config) and "wrong" not in repr(crm.http.auth)


def test_revoked_refresh_token(emu_reset):
    base = emu_reset.base_url
    token = httpx.post(f"{base}/__emulator__/tokens", json={}).json()["refresh_token"]
    crm = make_crm(emu_reset, refresh_token=SecretStr(token))
    assert list(crm.iter_records("Accounts", ["Account_Name"]))  # works while valid
    httpx.post(f"{base}/__emulator__/tokens/revoke", json={"token": token})
    crm.http.auth.invalidate()
    with pytest.raises(FatalError, match="crmbooks connect") as info:
        list(crm.iter_records("Accounts", ["Account_Name"]))
    assert token not in str(info.value)


def test_revoked_grant_mid_run_without_refresh_is_fatal_too(emu_reset):
    base = emu_reset.base_url
    token = httpx.post(f"{base}/__emulator__/tokens", json={}).json()["refresh_token"]
    crm = make_crm(emu_reset, refresh_token=SecretStr(token))
    list(crm.iter_records("Accounts", ["Account_Name"]))
    httpx.post(f"{base}/__emulator__/tokens/revoke", json={"token": token})
    # The cached access token dies with the grant: 401 → refresh → invalid_code → fatal.
    with pytest.raises(FatalError, match="refresh token was rejected"):
        list(crm.iter_records("Accounts", ["Account_Name"]))


def test_missing_scope_is_an_auth_error(emu_reset):
    base = emu_reset.base_url
    token = httpx.post(f"{base}/__emulator__/tokens",
                       json={"scopes": ["ZohoCRM.users.READ"]}).json()["refresh_token"]
    crm = make_crm(emu_reset, refresh_token=SecretStr(token))
    with pytest.raises(AuthError, match="scope"):
        list(crm.iter_records("Accounts", ["Account_Name"]))


def test_unknown_organization(emu_reset):
    books = make_books(emu_reset, books_org_id="999999")
    with pytest.raises(FatalError, match="books_org_id"):
        list(books.iter_pages("contacts"))


def test_unknown_field_in_the_selection(crm_client):
    with pytest.raises(FatalError, match="fields") as info:
        list(crm_client.iter_records("Accounts", ["Account_Name", "No_Such_Field"]))
    assert "No_Such_Field" in str(info.value)
    assert crm_client.calls.snapshot()["crm GET /crm/v8/{module}"] == 1  # not retried


def test_unknown_module(crm_client):
    with pytest.raises(FatalError):
        list(crm_client.iter_records("Nonsense", ["Name"]))
