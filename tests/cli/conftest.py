"""CLI tests: a fresh crmbooks home with the session emulator's secrets."""

from __future__ import annotations

import pytest

from crmbooks.runtime import reset_runtime_cache


@pytest.fixture
def home(tmp_path, monkeypatch, emulator):
    """A fresh CRMBOOKS_HOME, the emulator's secrets in the environment, clean caches."""
    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMBOOKS_DATABASE_URL", raising=False)
    config = emulator.emu.config
    monkeypatch.setenv("CRMBOOKS_CLIENT_SECRET", config.client_secret)
    monkeypatch.setenv("CRMBOOKS_REFRESH_TOKEN", config.refresh_token)
    reset_runtime_cache()
    yield tmp_path
    reset_runtime_cache()
