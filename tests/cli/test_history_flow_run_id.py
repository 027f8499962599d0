"""`crmbooks history --run` takes the id the Prefect UI shows, too: one run, two ids, either
finds it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from crmbooks.app.cli import app


def test_history_finds_a_run_by_its_prefect_flow_run_id(home):
    from crmbooks.runtime import open_store

    store = open_store()
    one = store.start_run("customers", flow_run_id="0f3c7d2e-aaaa-4bbb-8ccc-000000000001")
    store.finish_run(one, "completed", counts={})
    runner = CliRunner()

    found = runner.invoke(app, ["history", "--run", "0f3c7d2e-aaaa-4bbb-8ccc-000000000001",
                                "--json"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["runs"][0]["run_id"] == one


def test_a_flow_run_of_several_crmbooks_runs_names_them_instead_of_guessing(home):
    """A retry of two modules is one Prefect flow run and two crmbooks runs."""
    from crmbooks.runtime import open_store

    store = open_store()
    flow_run = "0f3c7d2e-aaaa-4bbb-8ccc-000000000002"
    runs = [store.start_run(m, flow_run_id=flow_run) for m in ("customers", "vendors")]
    before = len(store.list_runs())

    result = CliRunner().invoke(app, ["history", "--run", flow_run])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "holds 2 crmbooks runs" in said and all(r in said for r in runs), said
    assert "Traceback" not in result.output
    assert len(store.list_runs()) == before  # nothing written, nothing lost
