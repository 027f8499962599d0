"""Every `crmbooks … --help` screen: it opens, shows switches as switches, and says what it
means in words (no feature codes, no pointers to documents outside the repository)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from crmbooks.app.cli import app

#: Feature codes (a capital letter and a number), section signs and pointers to documents
#: outside the repository, which a reader cannot follow.
CODES = re.compile(r"\b[FBD]\d{1,2}\b|§|\bcli\.md\b|reference/|shared/")


def command_paths(command=None, path=()) -> list[tuple[str, ...]]:
    """The path of every command and command group, the root first."""
    command = command or typer.main.get_command(app)
    paths = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += command_paths(sub, (*path, name))
    return paths


PATHS = command_paths()


def test_every_command_is_reached():
    names = {" ".join(p) for p in PATHS}
    assert {"sync", "configure", "history", "pause", "deals link", "transactions sync",
            "webhook", "up", "linked"} <= names


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "crmbooks")
def test_help_shows_switches_as_switches_and_no_codes(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert not CODES.findall(result.output), result.output


def test_a_switch_takes_no_value():
    result = CliRunner().invoke(app, ["sync", "--dry-run=yes"])
    assert result.exit_code == 2
    assert "does not take a value" in result.output
