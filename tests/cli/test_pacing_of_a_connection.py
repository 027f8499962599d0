"""The Books limit a connection paces at: the emulators' own when crmbooks connects to
emulators (the demo starts them with a higher one than real Books'), Zoho's 100 a minute for
a connection made with `crmbooks connect`, whatever the emulator behind it allows."""

from __future__ import annotations

from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.connect import connect_to_emulator
from crmbooks.runtime import config_from_store, open_store, reset_runtime_cache


def test_a_connection_to_emulators_paces_at_their_limit(home, emu_reset):
    assert emu_reset.emu.config.books_rate_limit == 100_000
    connect_to_emulator(emu_reset)
    assert config_from_store(open_store()).books_requests_per_minute == 100_000


def test_crmbooks_connect_keeps_zohos_limit(home, emu_reset):
    config = emu_reset.emu.config
    result = CliRunner().invoke(app, [
        "connect", "--api-url", emu_reset.base_url, "--accounts-url", emu_reset.base_url,
        "--client-id", config.client_id, "--books-org", config.books_org_ids[0]])
    assert result.exit_code == 0, result.output
    reset_runtime_cache()
    assert config_from_store(open_store()).books_requests_per_minute == 100
