"""Connecting crmbooks to the test emulators, importable by the tests (a conftest is not)."""

from __future__ import annotations


def connect_to(emulator, monkeypatch, tmp_path, database_url: str):
    """Point crmbooks at the emulator exactly as `crmbooks connect` does; returns the Store."""
    from crmbooks.connect import connect_to_emulator

    config = emulator.emu.config
    monkeypatch.setenv("CRMBOOKS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBOOKS_DATABASE_URL", database_url)
    # Set through monkeypatch first, so that the test restores them afterwards.
    monkeypatch.setenv("CRMBOOKS_CLIENT_SECRET", config.client_secret)
    monkeypatch.setenv("CRMBOOKS_REFRESH_TOKEN", config.refresh_token)
    return connect_to_emulator(emulator)
