"""The audit trail and undo, through the emulators' HTTP APIs.

Every remote write is journaled before it is sent, with the values it replaces as the plan
read them in the same run: an overwrite shows before → after in history, and a killed run's
writes show in its history as unconfirmed until the rerun confirms them. `crmbooks undo RUN`
puts back what a run changed and removes what it created, refusing (with its reason) what
changed since; it is a run of its own that can be undone in turn.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from support.customers import BOOKS_CUSTOMERS, books_by_name, books_customers, crm_by_name, sync

pytestmark = pytest.mark.books_customers(BOOKS_CUSTOMERS)


def cli(*args: str):
    """Run `crmbooks ARGS` in-process; the result (exit_code, output)."""
    return CliRunner().invoke(app, list(args))


def add_account(crm_http, values: dict) -> str:
    """Create a CRM account as a CRM user would; its id."""
    answer = crm_http.post("/crm/v8/Accounts", json={"data": [values]})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["data"][0]["details"]["id"]


@pytest.fixture(scope="module")
def launcher(prefect_harness):
    """The process that forks the runs these tests kill."""
    from support.crash import Launcher

    launcher = Launcher()
    yield launcher
    launcher.close()


def shown_events(run_id: str) -> list[dict]:
    """`crmbooks history --run RUN --json`'s events."""
    result = cli("history", "--run", run_id, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["events"]


def test_a_killed_runs_writes_show_unconfirmed_until_the_rerun_confirms_them(
        launcher, store, emu_reset, books_http, tmp_path):
    """Killed while sending its first batch: history shows the whole batch, with the values
    each write replaces (an overwrite's read from the Books customer in full, not from the
    listed summary that has no website), unconfirmed until the rerun confirms them."""
    from support.crash import applied_writes, crash
    from support.customers import books_put

    acme = books_by_name(emu_reset, "business")["Acme Ltd"][0]  # the CRM has an Acme Ltd
    books_put(books_http, emu_reset, acme["contact_id"], {"website": "https://before.example"})
    # overwrite: CRM accounts named like Books customers replace their data
    store.save_settings("customers", {"crm_module": "accounts", "scope": "fetch",
                                      "duplicates": "overwrite"})
    crash(launcher, emu_reset, "customers", tmp_path / "child.log", die_after="books:2")
    landed = [w for w in applied_writes(emu_reset.emu) if w.startswith("PUT /books/")]
    assert len(landed) >= 2  # an overwrite (an update) may come first
    (killed,) = store.list_runs(module="customers", limit=1)
    said = shown_events(killed.id)
    # every write of the batch it was sending is there, none confirmed: it never saw answers
    assert len(said) >= 2 and not any(e["confirmed"] for e in said)
    assert all("unconfirmed" in e["message"] for e in said)
    assert {e["action"] for e in said} == {"created", "overwritten"}
    (overwrite,) = [e for e in said if e["books_id"] == acme["contact_id"]]
    crm_acme = crm_by_name(emu_reset)["Acme Ltd"][0]
    assert {"side": "books", "field": "website", "before": "https://before.example",
            "after": crm_acme.get("Website") or None} in overwrite["changes"]
    text = cli("history", "--run", killed.id).output
    assert "(unconfirmed)" in text

    state, rerun = sync(store)
    assert state.is_completed() and rerun.state == "completed", state.message
    said = shown_events(killed.id)
    assert said and all(e["confirmed"] for e in said), [
        (e["name"], e["message"]) for e in said if not e["confirmed"]]
    assert all(f"confirmed by run {rerun.id[:8]}" in e["message"] for e in said)
    assert all(w["state"] == "done" for w in store.writes(rerun.id))


def twin_in_books(server, crm_id: str) -> dict | None:
    """The Books customer that carries this CRM id."""
    from support.customers import cf

    return next((c for c in books_customers(server).values() if cf(c) == crm_id), None)


def test_undo_puts_back_both_sides_removes_creates_and_refuses_what_changed(
        store_any_db, emu_reset, crm_http, books_http):
    from support.customers import books_put, clear_stats, crm, crm_put, writes

    store = store_any_db
    state, _ = sync(store, crm_module="accounts", scope="both", duplicates="skip")
    assert state.is_completed(), state.message
    links = store.links("customers").to_dict("records")
    accounts = crm(emu_reset)
    a = next(r["crm_id"] for r in links if accounts[r["crm_id"]].get("Website"))
    b = next(r for r in links if r["crm_id"] != a)
    a_books = twin_in_books(emu_reset, a)
    old_a, old_b = a_books["website"], accounts[b["crm_id"]].get("Website")
    emu_reset.emu.advance_clock(2)
    crm_put(crm_http, "Accounts", a, {"Website": "https://a-new.example"})
    books_put(books_http, emu_reset, b["books_id"], {"website": "https://b-new.example"})
    made = {n: add_account(crm_http, {"Account_Name": n}) for n in
            ("Undo Created Ltd", "Undo Edited Ltd", "Undo Deleted Ltd", "Undo Invoiced Ltd")}
    state, run = sync(store)
    assert state.is_completed() and run.state == "completed", state.message
    assert crm(emu_reset)[b["crm_id"]]["Website"] == "https://b-new.example"
    created = {n: twin_in_books(emu_reset, i)["contact_id"] for n, i in made.items()}

    emu_reset.emu.advance_clock(2)  # after the run: one record edited by hand, one deleted
    books_put(books_http, emu_reset, created["Undo Edited Ltd"],
              {"website": "https://by-hand.example"})
    org = emu_reset.emu.config.books_org_ids[0]
    assert books_http.delete(f"/books/v3/contacts/{created['Undo Deleted Ltd']}",
                             params={"organization_id": org}).status_code == 200
    item = next(iter(emu_reset.emu.books.org().records["items"]))
    invoiced = books_http.post("/books/v3/invoices", params={"organization_id": org}, json={
        "customer_id": created["Undo Invoiced Ltd"], "line_items": [{"item_id": item}]})
    assert invoiced.status_code in (200, 201), invoiced.text
    clear_stats(emu_reset)

    preview = cli("undo", run.id[:8], "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert "dry run, nothing written" in " ".join(preview.output.split())
    assert writes(emu_reset) == []

    done = cli("undo", run.id, "--json")
    assert done.exit_code == 1, done.output  # some parts refused, the rest done
    report = json.loads(done.output)
    parts = {(p["crm_id"], p["side"]): p for p in report["parts"]}
    assert parts[(a, "books")]["action"] == "restore"
    assert parts[(b["crm_id"], "crm")]["action"] == "restore"
    by_name = {p["name"]: p for p in report["parts"] if p["name"] in made}
    assert by_name["Undo Created Ltd"]["action"] == "delete"
    assert by_name["Undo Edited Ltd"]["action"] == "refuse"
    assert "changed in Books since the run" in by_name["Undo Edited Ltd"]["reason"]
    assert by_name["Undo Deleted Ltd"]["reason"] == "deleted in Books since the run"
    assert by_name["Undo Invoiced Ltd"]["action"] == "delete"
    kept = books_customers(emu_reset)[created["Undo Invoiced Ltd"]]  # an invoice uses it
    assert kept["status"] == "inactive"
    assert twin_in_books(emu_reset, a)["website"] == old_a
    assert crm(emu_reset)[b["crm_id"]].get("Website") == old_b
    assert twin_in_books(emu_reset, made["Undo Created Ltd"]) is None
    assert store.decisions("customers")[f"crm/Accounts/{made['Undo Created Ltd']}"][0] == \
        "skip"  # its source stays out of later runs
    assert store.find_link("customers", crm_id=made["Undo Created Ltd"]) is None
    assert books_customers(emu_reset)[created["Undo Edited Ltd"]]["website"] == \
        "https://by-hand.example"
    undo_run = report["undo_run"]
    assert store.run(undo_run).state == "completed"
    restored = next(e for e in shown_events(undo_run) if e["crm_id"] == a)
    assert restored["changes"] == [{"side": "books", "field": "website",
                                    "before": "https://a-new.example", "after": old_a}]

    clear_stats(emu_reset)  # bad input: one sentence, exit 2, nothing written
    fake = store.start_run("customers", dry_run=True)
    store.finish_run(fake, "completed", counts={}, api_calls={})
    runs_before = len(store.list_runs(module="customers", limit=1000))
    for args, said in (((run.id,), "was undone already"), ((fake,), "was a dry run"),
                       (("0000dead",), "no run '0000dead'")):
        refused = cli("undo", *args)
        assert refused.exit_code == 2 and said in refused.output, refused.output
        assert "Traceback" not in refused.output
    assert writes(emu_reset) == []
    assert len(store.list_runs(module="customers", limit=1000)) == runs_before

    state, after = sync(store)  # the next sync carries nothing back across
    assert state.is_completed(), state.message
    assert twin_in_books(emu_reset, a)["website"] == old_a
    assert crm(emu_reset)[b["crm_id"]].get("Website") == old_b
    assert twin_in_books(emu_reset, made["Undo Created Ltd"]) is None

    again = cli("undo", undo_run[:8], "--json")  # the undo is undone in turn
    assert again.exit_code == 1, again.output
    assert twin_in_books(emu_reset, a)["website"] == "https://a-new.example"
    assert crm(emu_reset)[b["crm_id"]]["Website"] == "https://b-new.example"
    refusals = [p["reason"] for p in json.loads(again.output)["parts"]
                if p["action"] == "refuse"]
    assert refusals == 2 * ["a record an undo removed is not brought back (`crmbooks "
                            "duplicates separate` on its source syncs it again)"], (
        [(w["record_key"], w["name"], w["side"], w["action"], w["changes"])
         for w in store.writes(after.id)])
