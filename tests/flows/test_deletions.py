"""Deletions by policy, with a brake, through the emulators' HTTP APIs.

A record deleted in the CRM (read from its deleted-records list) or in Books (an update its
twin no longer takes) has its twin kept, marked inactive or deleted by the module's policy;
the link is retired and history says what was done, so a gone twin never fails again. A run
past the brake deletes nothing until `crmbooks deletions approve RUN`; a run killed between a
delete and its link retirement deletes nothing twice when it runs again.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from support.crash import Launcher, applied_writes, crash
from support.customers import books_customers, cf, clear_stats, crm, crm_put, sync

FETCH = {"crm_module": "accounts", "scope": "fetch", "duplicates": "skip"}


def cli(*args: str):
    """Run `crmbooks ARGS` in-process; the result (exit_code, output)."""
    return CliRunner().invoke(app, list(args))


def add_accounts(crm_http, names: list[str]) -> dict[str, str]:
    """Create CRM accounts as a CRM user would (100 a call): {name: id}."""
    ids = {}
    for start in range(0, len(names), 100):
        chunk = names[start:start + 100]
        answer = crm_http.post("/crm/v8/Accounts",
                               json={"data": [{"Account_Name": n} for n in chunk]})
        assert answer.status_code in (200, 201), answer.text
        ids.update((n, row["details"]["id"])
                   for n, row in zip(chunk, answer.json()["data"], strict=True))
    return ids


def delete_in_crm(crm_http, ids: list[str]) -> None:
    """Delete CRM accounts as a CRM user would."""
    answer = crm_http.delete("/crm/v8/Accounts", params={"ids": ",".join(ids)})
    assert all(r["status"] == "success" for r in answer.json()["data"]), answer.text


def twin_of(emulator, crm_id: str) -> dict | None:
    """The Books contact that carries this CRM id."""
    return next((c for c in books_customers(emulator).values() if cf(c) == crm_id), None)


def book_deletes(emulator) -> list[str]:
    """The Books deletes the emulator applied since its stats were cleared."""
    return [w for w in applied_writes(emulator.emu) if w.startswith("DELETE /books/")]


def events(store, run_id: str) -> dict[str, tuple[str, str]]:
    """{record key: (action, message)} of a run's history."""
    rows = store.events(run_id=run_id).to_dict("records")
    return {r["record_key"]: (r["action"], r["message"]) for r in rows}


def test_each_policy_and_a_gone_twin_that_never_fails_again(store_any_db, emu_reset,
                                                            crm_http, books_http):
    store = store_any_db
    ids = add_accounts(crm_http, ["Deactivate Me Ltd", "Gone In Books Ltd", "Kept Twin Ltd"])
    state, _ = sync(store, **FETCH, on_delete_in_crm="deactivate", on_delete_in_books="delete")
    assert state.is_completed(), state.message
    a, b, c = (ids[n] for n in ("Deactivate Me Ltd", "Gone In Books Ltd", "Kept Twin Ltd"))
    twin_a, twin_b, twin_c = (twin_of(emu_reset, i) for i in (a, b, c))
    org = emu_reset.emu.config.books_org_ids[0]

    # deactivate (deleted in the CRM) and delete (deleted in Books, found by the update the
    # CRM edit asks for and Books refuses with 1002)
    delete_in_crm(crm_http, [a])
    gone = books_http.delete(f"/books/v3/contacts/{twin_b['contact_id']}",
                             params={"organization_id": org})
    assert gone.status_code == 200, gone.text
    emu_reset.emu.advance_clock(5)
    crm_put(crm_http, "Accounts", b, {"Website": "https://gone.example"})
    state, run = sync(store)
    assert state.is_completed(), state.message
    assert run.state == "completed", run  # no failure: the gone twin is handled, not failed
    assert twin_of(emu_reset, a)["status"] == "inactive"
    assert b not in crm(emu_reset)  # its Books twin was deleted: so is it, by the policy
    assert store.find_link("customers", crm_id=a) is None
    assert store.find_link("customers", crm_id=b) is None
    said = events(store, run.id)
    assert said[f"crm/Accounts/{a}"] == (
        "updated", f"deleted in the CRM: Books twin {twin_a['contact_id']} marked inactive; "
                   "link retired")
    assert said[f"crm/Accounts/{b}"] == (
        "deleted", f"deleted in Books: the CRM twin {b} deleted; link retired")
    assert run.counts["books"]["updated"] == 1 and run.counts["crm"]["deleted"] == 1
    # journaled before they were sent, settled (the update of b's gone twin: refused)
    assert {(w["crm_id"], w["action"], w["state"]) for w in store.writes(run.id)} == {
        (a, "deactivate", "done"), (b, "delete", "done"), (b, "update", "failed")}

    # ignore: the CRM record stays, its link is retired once, and no run fails on it again
    store.save_settings("customers", {**FETCH, "on_delete_in_books": "ignore"})
    books_http.delete(f"/books/v3/contacts/{twin_c['contact_id']}",
                      params={"organization_id": org})
    emu_reset.emu.advance_clock(5)
    crm_put(crm_http, "Accounts", c, {"Website": "https://kept.example"})
    state, run = sync(store)
    assert run.state == "completed", run
    assert c in crm(emu_reset) and store.find_link("customers", crm_id=c) is None
    assert events(store, run.id)[f"crm/Accounts/{c}"][0] == "unlinked"
    assert store.failures(module="customers").empty
    emu_reset.emu.advance_clock(5)
    crm_put(crm_http, "Accounts", c, {"Website": "https://again.example"})
    state, run = sync(store)
    assert run.state == "completed" and store.failures(module="customers").empty


def test_the_brake_holds_30_deletions_until_approved(store, emu_reset, crm_http):
    ids = add_accounts(crm_http, [f"Brake Test {n:02d} Ltd" for n in range(30)])
    state, _ = sync(store, **FETCH, on_delete_in_crm="delete")
    assert state.is_completed(), state.message
    linked = [twin_of(emu_reset, i)["contact_id"] for i in ids.values()]

    delete_in_crm(crm_http, list(ids.values()))
    clear_stats(emu_reset)
    shown = cli("sync", "customers", "--json")  # the run's summary says what it held
    assert shown.exit_code == 0, shown.output
    [said] = json.loads(shown.output)["runs"]
    held = store.run(said["run_id"])
    assert book_deletes(emu_reset) == []  # nothing deleted
    assert said["held"] == held.message and said["counts"]["books"]["deleted"] == 0
    assert "30 deletion(s) held by the brake" in held.message
    assert f"crmbooks deletions approve {held.id[:8]}" in held.message
    assert all(twin_of(emu_reset, i) for i in ids.values())

    listed = cli("deletions", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)["deletions"]
    assert {r["books_id"] for r in rows} == set(linked)
    assert {(r["run_id"], r["action"], r["state"]) for r in rows} == {
        (held.id, "delete", "held")}

    approved = cli("deletions", "approve", held.id[:8])
    assert approved.exit_code == 0, approved.output
    assert sorted(book_deletes(emu_reset)) == sorted(
        f"DELETE /books/v3/contacts/{i}" for i in linked)  # each once
    assert not any(twin_of(emu_reset, i) for i in ids.values())
    assert store.held_deletions() == []
    assert all(store.find_link("customers", crm_id=i) is None for i in ids.values())

    # again: nothing deleted twice, and approving a run with nothing held is refused
    clear_stats(emu_reset)
    sync(store)
    again = cli("deletions", "approve", held.id[:8])
    assert again.exit_code == 2
    assert "has no deletions waiting for approval" in again.output
    assert applied_writes(emu_reset.emu) == []


@pytest.fixture(scope="module")
def launcher(prefect_harness):
    launcher = Launcher()
    yield launcher
    launcher.close()


def test_a_run_killed_between_a_delete_and_its_link_deletes_nothing_twice(
        launcher, store, emu_reset, crm_http, tmp_path):
    ids = add_accounts(crm_http, ["Killed Delete Ltd", "Killed Delete Two Ltd"])
    state, _ = sync(store, **FETCH, on_delete_in_crm="delete")
    assert state.is_completed(), state.message
    twins = {i: twin_of(emu_reset, i)["contact_id"] for i in ids.values()}
    delete_in_crm(crm_http, list(ids.values()))

    crash(launcher, emu_reset, "customers", tmp_path / "child.log",
          die_after="customers/books-delete:1")
    assert len(book_deletes(emu_reset)) == 1  # one twin deleted, its link not retired
    assert sum(store.find_link("customers", crm_id=i) is not None for i in ids.values()) == 2

    clear_stats(emu_reset)
    state, run = sync(store)
    assert state.is_completed() and run.state == "completed", run
    # the rerun deletes only the twin left; the other one's delete says it is already gone
    assert len(book_deletes(emu_reset)) == 1
    assert not any(twin_of(emu_reset, i) for i in ids.values())
    assert all(store.find_link("customers", crm_id=i) is None for i in ids.values())
    said = events(store, run.id)
    assert {said[f"crm/Accounts/{i}"][0] for i in ids.values()} == {"deleted", "unlinked"}
    assert any("was already gone" in said[f"crm/Accounts/{i}"][1] for i in ids.values())
    assert set(twins.values()).isdisjoint(books_customers(emu_reset))
