"""`crmbooks configure … --map / --value-map`: a map no run could use is refused when it is
saved (exit 2, one sentence naming the field and what to do, the settings as they were), value
maps are saved with the module's settings and shown by `status`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app


@pytest.fixture
def runner(monkeypatch):
    """A CliRunner on a wide console (table cells unwrapped)."""
    from crmbooks.app.cli import common

    monkeypatch.setattr(common.console, "width", 240)
    return CliRunner()


@pytest.fixture
def connected(home, runner, emu_reset):
    """crmbooks connected to the session emulator, freshly seeded (the metadata the checks
    read is its records'), in a fresh home."""
    emulator = emu_reset
    config = emulator.emu.config
    result = runner.invoke(app, [
        "connect", "--api-url", emulator.base_url, "--accounts-url", emulator.base_url,
        "--client-id", config.client_id, "--books-org", config.books_org_ids[0]])
    assert result.exit_code == 0, result.output
    from crmbooks.runtime import open_store
    from crmbooks.store import Store

    return Store(open_store().engine, org_id=config.books_org_ids[0])


def refused(result, *words: str) -> str:
    """Exit 2 with one sentence holding `words`, saying nothing was saved."""
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "Traceback" not in text and text.count("error:") == 1, text
    for word in (*words, "nothing was saved"):
        assert word in text, text
    return text


def test_configure_refuses_a_map_to_a_field_books_does_not_have(connected, runner):
    """The case that used to be saved, exit 0, and fail every later run."""
    before = connected.settings_history("customers")
    result = runner.invoke(app, ["configure", "customers", "--map", "not_a_field=Website"])
    refused(result, "--map not_a_field=Website", "Books contacts have no field 'not_a_field'",
            "name a standard Books field")
    assert connected.settings_history("customers") == before


def test_maps_are_checked_against_the_live_fields_and_value_maps_saved(connected, runner):
    """The CRM's fields as its API reports them decide: a picklist needs a value map (a value
    map naming a value the picklist lacks: tests/unit/test_map_checks.py); a malformed value
    map says its form. Value maps are saved with the settings, shown by `status`, and
    dropped with their map."""
    cases = [
        (["customers", "--map", "cf_segment=Tier__c"],
         ["Tier__c is a picklist and has no value map", "--value-map cf_segment:"]),
        (["items", "--value-map", "product_type=goods"], ["BOOKS_FIELD:CRM_VALUE=BOOKS_VALUE"]),
    ]
    for args, words in cases:
        before = connected.settings_history(args[0])
        refused(runner.invoke(app, ["configure", *args]), *words)
        assert connected.settings_history(args[0]) == before
    other = runner.invoke(app, ["configure", "deals", "--value-map", "x:a=b"])
    assert other.exit_code == 2 and "--value-map applies only to" in other.output

    # With a value map, the same picklist map is saved (the same home: metadata cached),
    # shown, and dropped with its map.
    saved = runner.invoke(app, ["configure", "customers", "--no-preview",
                                "--map", "cf_segment=Tier__c",
                                "--value-map", "cf_segment:Gold=gold",
                                "--value-map", "cf_segment:Silver=silver"])
    assert saved.exit_code == 0, saved.output
    assert "cf_segment: Gold=gold, Silver=silver" in saved.output  # the diff shows it
    status = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert status["modules"]["customers"]["settings"]["value_maps"] == {
        "custom_fields.cf_segment": {"Gold": "gold", "Silver": "silver"}}
    dropped = runner.invoke(app, ["configure", "customers", "--no-preview",
                                  "--unmap", "cf_segment"])
    assert dropped.exit_code == 0, dropped.output
    version, settings = connected.active_settings("customers")
    assert settings["maps"] == [] and settings["value_maps"] == {}


def test_a_change_that_cannot_be_planned_is_said_and_still_saved(connected, runner,
                                                                  monkeypatch):
    """No answer from Zoho: the maps are checked by the schema alone and the plan is not
    made, both said in a note; the settings are saved."""
    from crmbooks.runtime import reset_runtime_cache

    monkeypatch.setenv("CRMBOOKS_REFRESH_TOKEN", "not-a-token")
    reset_runtime_cache()
    result = runner.invoke(app, ["configure", "vendors", "--map", "cf_segment=GL_Account"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "checked against the mapping schema only" in text
    assert "could not be planned" in text and "saving it anyway" in text
    assert connected.active_settings("vendors")[1]["maps"][0]["crm"] == "GL_Account"
