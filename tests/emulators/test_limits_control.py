"""The emulator's limits control: a shorter Books window, and bad values refused whole."""

from __future__ import annotations

import httpx
import pytest


def test_a_shorter_books_window_refuses_over_its_limit_and_frees_after_it(emu_reset):
    base = emu_reset.base_url
    httpx.post(f"{base}/__emulator__/limits",
               json={"books_rate_limit": 2, "books_rate_window_s": 1}).raise_for_status()
    org = emu_reset.emu.config.books_org_ids[0]
    limits = emu_reset.emu.limits
    limits.minute.clear()  # nothing counted before this test's own requests
    assert limits.books_admit(org) is None and limits.books_admit(org) is None
    refused = limits.books_admit(org)
    assert refused is not None and refused.status == 429
    assert refused.headers == {"Retry-After": "1"}  # the window's length, not a minute


def test_a_reset_forgets_the_requests_counted_before_it(emu_reset):
    """Requests of an earlier test must not count against the limits the next one sets."""
    base = emu_reset.base_url
    httpx.post(f"{base}/__emulator__/limits",
               json={"books_rate_limit": 2, "books_rate_window_s": 60}).raise_for_status()
    org = emu_reset.emu.config.books_org_ids[0]
    limits = emu_reset.emu.limits
    limits.books_admit(org), limits.books_admit(org)
    assert limits.books_admit(org) is not None  # the window is full
    httpx.post(f"{base}/__emulator__/reset", json={}, timeout=60).raise_for_status()
    assert limits.books_admit(org) is None  # a fresh window after the reset


@pytest.mark.parametrize("body", [
    {"books_rate_window_s": 0}, {"books_rate_window_s": -5}, {"books_rate_window_s": "60"},
    {"books_rate_limit": True}, {"books_rate_limit": None},
    {"books_rate_limit": 50, "books_rate_window_s": []},
])
def test_a_bad_limit_is_refused_with_its_reason_and_changes_nothing(emu_reset, body):
    before = (emu_reset.emu.config.books_rate_limit, emu_reset.emu.config.books_rate_window_s)
    answer = httpx.post(f"{emu_reset.base_url}/__emulator__/limits", json=body)
    assert answer.status_code == 400
    assert "must be a positive number" in answer.json()["error"]
    assert (emu_reset.emu.config.books_rate_limit,
            emu_reset.emu.config.books_rate_window_s) == before


def test_the_refresh_limit_may_be_lifted_with_null(emu_reset):
    base = emu_reset.base_url
    httpx.post(f"{base}/__emulator__/limits",
               json={"token_refresh_limit_per_10min": 3}).raise_for_status()
    answer = httpx.post(f"{base}/__emulator__/limits",
                        json={"token_refresh_limit_per_10min": None})
    assert answer.status_code == 200 and answer.json()["token_refresh_limit_per_10min"] is None
