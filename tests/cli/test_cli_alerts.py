"""`crmbooks alerts add`: a bad request is one sentence and exit code 2, decided before any
Prefect server is asked, so nothing is created (the end-to-end test in
tests/flows/test_alerts.py shows the server's alert list stays empty).

`asked` makes any contact with a Prefect server fail the test, except in the one case about
a server that does not answer.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import alerts as alerts_cli
from crmbooks.app.cli import app
from deployments.alerts import Target, check_target, shown

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"
TEAMS = ("https://prod-00.westeurope.logic.azure.com:443/workflows/abc123/triggers/manual/"
         "paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=s1g")


@pytest.fixture
def asked(monkeypatch):
    """No Prefect server may be asked: the request is refused before."""

    def never():
        raise AssertionError("a Prefect server was asked")

    monkeypatch.setattr(alerts_cli, "_server", never)


def one_sentence(result, *words: str) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert text.startswith("error: ") and text.count("error:") == 1, result.output
    for word in words:
        assert word in text, text
    return text


@pytest.mark.parametrize(("args", "words"), [
    ([], ["say where the alert goes", "--slack-webhook", "--webhook"]),
    (["--slack-webhook", SLACK, "--webhook", "https://example.com/h"],
     ["one target per alert", "--slack", "--webhook"]),
    (["--webhook", "example.com/hook"], ["is not an http(s) URL"]),
    (["--webhook", "ftp://example.com/hook"], ["is not an http(s) URL"]),
    (["--slack-webhook", "https://example.com/services/x"], ["not a Slack incoming webhook"]),
    (["--teams-webhook", "https://example.com/teams"], ["not a Power Automate workflow URL"]),
    (["--email", "ops.example.com", "--smtp", "mail.example.com"], ["not an email address"]),
    (["--email", "ops@example.com"], ["needs its mail server", "--smtp"]),
    (["--email", "ops@example.com", "--smtp", "mail.example.com:smtp"], ["HOST:PORT"]),
    (["--webhook", "https://example.com/h", "--smtp", "mail.example.com"],
     ["--smtp and --smtp-user go with --email only"]),
    (["--webhook", "https://example.com/h", "--name", "Ops Alerts"],
     ["lowercase letters, digits or dashes"]),
])
def test_a_bad_alert_is_one_sentence_exit_2_before_any_server_is_asked(asked, args, words):
    one_sentence(CliRunner().invoke(app, ["alerts", "add", *args]), *words)


def test_no_prefect_server_answering_is_one_sentence_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens there
    for args in (["add", "--webhook", "https://example.com/h"], ["list"], ["remove", "x"]):
        one_sentence(CliRunner().invoke(app, ["alerts", *args]), "does not answer",
                     "crmbooks up")


def test_a_listed_target_never_shows_its_secret_parts():
    assert shown(SLACK) == "https://hooks.slack.com/…"
    assert shown("http://127.0.0.1:8123/hook?token=s3cret") == "http://127.0.0.1:8123/…"
    assert shown("mailto://bot:pw@mail.example.com:587?to=ops@example.com&from=x@y") == \
        "email to ops@example.com via mail.example.com"


def test_good_targets_pass_the_checks(monkeypatch):
    monkeypatch.setenv("CRMBOOKS_SMTP_PASSWORD", "pw")
    for target in (Target("slack", SLACK), Target("teams", TEAMS),
                   Target("webhook", "http://127.0.0.1:8123/hook"),
                   Target("email", "ops@example.com", smtp="mail.example.com:587",
                          smtp_user="bot@example.com")):
        assert check_target(target) is target
