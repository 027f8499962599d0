"""`crmbooks alerts add|list|remove`: be told when a crmbooks run fails.

An alert is a Prefect notification block and a Prefect automation on the Prefect server the
runs report to (`PREFECT_API_URL`, else the server of a running `crmbooks up` or the local one
crmbooks started for its home): it fires when a crmbooks run fails, crashes or ends with
failed records, and sends the run's name, its counts and first failure reasons, and its link
in the UI. Nothing is started here: with no server answering, the command says so (exit 2).
"""

from __future__ import annotations

import json

import typer

from crmbooks.app.cli.common import Command, Group, console, fail, print_table

alerts_app = typer.Typer(help="Be told when a run fails: Slack, Teams, email or a webhook.",
                         no_args_is_help=True, cls=Group)


def _server() -> str:
    """The Prefect API the runs report to, when one answers (exit 2 otherwise)."""
    import os
    from pathlib import Path

    from crmbooks.app.cli.common import prepare_local_prefect
    from deployments.prefect_server import configured_api_url, healthy, read_record

    prepare_local_prefect()
    url = configured_api_url()
    if url is None:
        record = read_record(Path(os.environ["PREFECT_HOME"]))
        url = record["api_url"] if record else None
    if url is None:
        fail("no Prefect server is running for crmbooks: start `crmbooks up` (or set "
             "PREFECT_API_URL to your server), then add the alert again")
    if not healthy(url):
        fail(f"the Prefect server at {url} does not answer: start `crmbooks up` (or check "
             "PREFECT_API_URL), then try again")
    return url


def _flow_names() -> list[str]:
    """The names of every flow crmbooks deploys (the automation fires on their runs only)."""
    from deployments.serve import DEPLOYMENTS

    return sorted({spec.load_flow().name for spec in DEPLOYMENTS})


@alerts_app.command("add", cls=Command)
def add(
    slack: str = typer.Option(None, "--slack-webhook", metavar="URL",
                              help="A Slack incoming webhook (https://hooks.slack.com/…)."),
    teams: str = typer.Option(None, "--teams-webhook", metavar="URL",
                              help="A Microsoft Teams (Power Automate workflow) webhook."),
    email: str = typer.Option(None, "--email", metavar="ADDR",
                              help="An email address (with --smtp)."),
    smtp: str = typer.Option(None, "--smtp", metavar="HOST[:PORT]",
                             help="The mail server for --email (port 465: TLS)."),
    smtp_user: str = typer.Option(None, "--smtp-user", metavar="USER",
                                  help="The mail server login (password: "
                                       "CRMBOOKS_SMTP_PASSWORD in the environment)."),
    webhook: str = typer.Option(None, "--webhook", metavar="URL",
                                help="Any URL: a JSON POST {\"text\", \"subject\", \"alert\"}."),
    name: str = typer.Option(None, "--name",
                             help="The alert's name (default: slack, teams, email or webhook)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
):
    """Send an alert when a crmbooks run fails, crashes or ends with failed records.

    Exactly one target. The message gives the run's name, its counts and first failure
    reasons, and its link in the Prefect UI. Exit code 2, nothing created: no target or two,
    a malformed address, a name taken, or no Prefect server answering.

    Example: crmbooks alerts add --slack-webhook https://hooks.slack.com/services/TEAM/HOOK/TOKEN
    """
    from deployments.alerts import AlertError, Target, check_name, check_target

    given = {kind: value for kind, value in (("slack", slack), ("teams", teams),
                                             ("email", email), ("webhook", webhook))
             if value is not None}
    if not given:
        fail("say where the alert goes: one of --slack-webhook URL, --teams-webhook URL, "
             "--email ADDR --smtp HOST[:PORT], or --webhook URL")
    if len(given) > 1:
        fail(f"one target per alert, not {len(given)} "
             f"({', '.join('--' + k for k in given)}): add one alert for each")
    [(kind, address)] = given.items()
    if kind != "email" and (smtp or smtp_user):
        fail("--smtp and --smtp-user go with --email only")
    target = Target(kind, address.strip(), smtp=smtp, smtp_user=smtp_user)
    try:
        check_name(name or kind)
        check_target(target)
    except AlertError as exc:
        fail(f"{exc}.")
    url = _server()  # the target is checked before any server is asked
    from deployments.alerts import add as add_alert

    try:
        alert = add_alert(url, name or kind, target, _flow_names())
    except AlertError as exc:
        fail(f"{exc}.")
    if json_out:
        typer.echo(json.dumps(alert))
        return
    console.print(f"Alert {alert['name']!r} added on {url.removesuffix('/api')}: a crmbooks "
                  f"run that fails, crashes or ends with failed records is sent to "
                  f"{alert['target']}.", highlight=False)


@alerts_app.command("list", cls=Command)
def list_(json_out: bool = typer.Option(False, "--json", help="Print JSON for scripts.")):
    """List the alerts: name, kind, where they go (without secrets) and whether they are on.

    Example: crmbooks alerts list --json
    """
    from rich.table import Table

    from deployments.alerts import list_alerts

    alerts = list_alerts(_server())
    if json_out:
        typer.echo(json.dumps({"alerts": alerts}))
        return
    if not alerts:
        console.print("No alerts: `crmbooks alerts add` makes one.")
        return
    table = Table("name", "kind", "target", "enabled")
    for alert in alerts:
        table.add_row(alert["name"], alert["kind"], alert["target"],
                      "yes" if alert["enabled"] else "no")
    print_table(table)


@alerts_app.command("remove", cls=Command)
def remove(name: str = typer.Argument(..., help="The alert's name (`alerts list`).")):
    """Remove an alert: its automation and its notification block.

    Example: crmbooks alerts remove slack
    """
    from deployments.alerts import AlertError
    from deployments.alerts import remove as remove_alert

    try:
        remove_alert(_server(), name)
    except AlertError as exc:
        fail(f"{exc}.")
    console.print(f"Alert {name!r} removed.", highlight=False)
