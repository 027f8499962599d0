"""One run, two ids: crmbooks' run id and the Prefect flow-run id the UI shows. The store
finds a flow run's runs, and `retry` (flow, form and CLI) takes either id."""

from __future__ import annotations

import pytest

from crmbooks.operations import NothingToDo, failed_targets

FLOW_RUN = "5a1e0c3b-1111-4222-8333-000000000009"


def failing(store, module: str, key: str, crm_id: str) -> str:
    run = store.start_run(module, flow_run_id=FLOW_RUN)
    store.add_failures(run, module, [{"side": "books", "record_key": key, "crm_id": crm_id,
                                      "message": "too long", "hint": "shorten it"}])
    return run


def test_a_flow_runs_runs_and_their_failures_are_found_by_its_prefect_id(store):
    customers = failing(store, "customers", "crm/Accounts/1", "1")
    vendors = failing(store, "vendors", "crm/Vendors/2", "2")
    other = store.start_run("customers", flow_run_id="another")
    store.add_failures(other, "customers", [{"side": "books", "record_key": "crm/Accounts/3",
                                             "crm_id": "3", "message": "x", "hint": "y"}])

    assert [r.id for r in store.runs_of_flow_run(FLOW_RUN)] == [customers, vendors]
    [chosen] = failed_targets(store, run_id=FLOW_RUN).values()  # one organization
    assert chosen["customers"]["crm"] == ["1"] and chosen["vendors"]["crm"] == ["2"]
    [one_run] = failed_targets(store, run_id=customers).values()
    assert one_run == {"customers": chosen["customers"]}


def test_an_id_of_no_run_still_says_there_is_nothing_to_retry(store):
    failing(store, "customers", "crm/Accounts/1", "1")
    with pytest.raises(NothingToDo, match="no unresolved failures for run nope"):
        failed_targets(store, run_id="nope")
    assert len(store.failures()) == 1  # nothing lost
