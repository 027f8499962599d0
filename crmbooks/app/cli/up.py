"""`crmbooks up`: one machine, one command: Prefect server, emulators unless connected, the
event receiver, every deployment served."""

from __future__ import annotations

import typer

from crmbooks.app.cli.common import EXIT_CONFIG, console, fail


def up(
    host: str = typer.Option("127.0.0.1", help="Address of the Prefect server and UI."),
    port: int = typer.Option(4200, help="Port of the Prefect server (reused if one answers)."),
    emulators: bool = typer.Option(
        None, "--emulators/--no-emulators",
        help="Run the Zoho emulators in-process (default: only when nothing is connected)."),
    emulators_port: int = typer.Option(8900, help="Port of the emulators; 0 picks a free one."),
    seed: int = typer.Option(7, help="Seed of the emulators' sample data."),
    accounts: int = typer.Option(40, help="CRM accounts the emulators seed."),
    retention_days: int = typer.Option(30, help="Days Prefect keeps finished flow runs."),
    keep_schedules: bool = typer.Option(
        False, "--keep-schedules",
        help="Leave the schedules active on exit (under a supervisor that restarts `up`)."),
):
    """One machine: Prefect server, emulators unless connected, every deployment served.

    Prints the Prefect UI address; Ctrl-C (or SIGTERM) stops everything it started and pauses
    the schedules until the next `up` (see README "Running it for real").

    Example: crmbooks up --port 4200
    """
    from crmbooks.app.receiver.server import event_receiver
    from deployments.up import UpError
    from deployments.up import up as run_up

    try:
        code = run_up(host=host, port=port, emulators=emulators, emulators_port=emulators_port,
                      seed=seed, accounts=accounts, retention_days=retention_days,
                      pause_on_shutdown=not keep_schedules, console=console,
                      services=[event_receiver])
    except UpError as exc:
        fail(str(exc), EXIT_CONFIG, wrap=True)
    raise typer.Exit(code)
