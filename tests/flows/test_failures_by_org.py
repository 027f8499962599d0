"""Failures are listed and retried per Books organization.

One CRM account fails in both organizations (its name is too long for Books). `history
--failures` shows each failure with its organization, `--org` keeps one; `retry --org` retries
only that organization's failure (the other stays open even though its record is fixed), and
the retry flow of the Prefect UI, given no organization, retries each failure in its own.
An organization never connected is refused with exit code 2, and no failure is touched.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.store import Store
from flows.customers import sync_customers
from flows.records import retry_failed_records
from support.orgs import EXTRA, PRIMARY


def _open(store: Store, crm_id: str) -> list[dict]:
    """The store's unresolved customers failures of this CRM record."""
    return [f for f in store.failures(module="customers").to_dict("records")
            if f["record_key"].endswith(f"/{crm_id}")]


def test_failures_are_listed_and_retried_in_their_own_organization(connected_two, two_orgs):
    primary, extra = connected_two, Store(connected_two.engine, org_id=EXTRA)
    accounts = two_orgs.emu.crm.records("Accounts")
    crm_id = sorted(accounts)[0]
    name = accounts[crm_id]["Account_Name"]
    accounts[crm_id]["Account_Name"] = f"{name} {'x' * 200}"  # Books takes at most 200
    for org in (PRIMARY, EXTRA):
        assert sync_customers(org_id=org, return_state=True).is_failed()
    [key] = {f["record_key"] for f in _open(primary, crm_id)}
    runner = CliRunner()

    listed = runner.invoke(app, ["history", "--failures", "--json"])
    assert listed.exit_code == 0, listed.output
    mine = [f for f in json.loads(listed.output)["failures"] if f["record"] == key]
    assert sorted(f["org"] for f in mine) == [PRIMARY, EXTRA]
    one = runner.invoke(app, ["history", "--failures", "--org", EXTRA, "--json"])
    assert one.exit_code == 0, one.output
    rows = json.loads(one.output)["failures"]
    assert key in {f["record"] for f in rows} and {f["org"] for f in rows} == {EXTRA}
    table = runner.invoke(app, ["history", "--failures", "--org", EXTRA])
    assert table.exit_code == 0 and "org" in table.output
    assert EXTRA in table.output and PRIMARY not in table.output

    for command in (["history", "--failures", "--org", "20099003"],
                    ["retry", "--org", "20099003"]):
        refused = runner.invoke(app, command)
        assert refused.exit_code == 2, refused.output
        assert "20099003 is not connected" in " ".join(refused.output.split())
    assert _open(primary, crm_id) and _open(extra, crm_id)  # nothing resolved, nothing lost

    accounts[crm_id]["Account_Name"] = name  # fixed at the source, for both organizations
    retried = runner.invoke(app, ["retry", "--org", EXTRA, "--record", key, "--json"])

    assert retried.exit_code == 0, retried.output
    runs = json.loads(retried.output)["runs"]
    assert [(r["module"], r.get("org_id"), r["state"]) for r in runs] == [
        ("customers", EXTRA, "completed")]
    assert not _open(extra, crm_id)
    assert [f["org_id"] for f in _open(primary, crm_id)] == [PRIMARY]  # not another's
    books = two_orgs.emu.books.org(EXTRA).records["contacts"].values()
    assert name in {c["contact_name"] for c in books}

    # The UI's retry, with no organization: the primary's failure, in the primary.
    assert retry_failed_records(record_keys=[key], return_state=True).is_completed()
    assert not _open(primary, crm_id)
    assert primary.list_runs(module="customers", limit=1)[0].org_id == PRIMARY
