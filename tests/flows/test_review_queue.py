"""Possible duplicates wait in a review queue; a person pairs, separates or skips them, and
pairs records by hand (`crmbooks link` / `unlink`). Through the emulators' HTTP APIs.

The Books world of these tests has 4 business customers named exactly like CRM accounts and
2 near-duplicates (tests/support/customers.py). Three more CRM accounts differ from a Books
customer's name only by case, a trailing space or Unicode normal form.
"""

from __future__ import annotations

import json
import unicodedata

import pytest
from typer.testing import CliRunner

from crmbooks.app.cli import app
from crmbooks.sync.plan import CLOSE_EVIDENCE, EXACT_EVIDENCE
from support.customers import (
    BOOKS_CUSTOMERS,
    books_by_name,
    books_customers,
    cf,
    clear_stats,
    crm,
    crm_by_name,
    failures,
    sync,
    writes,
)

pytestmark = pytest.mark.books_customers(BOOKS_CUSTOMERS)


def cli(*args: str):
    """Run `crmbooks ARGS` in-process; the result (exit_code, output)."""
    return CliRunner().invoke(app, list(args))


def add_accounts(crm_http, names: list[str]) -> dict[str, str]:
    """Create CRM accounts as a CRM user would: {name: id}."""
    answer = crm_http.post("/crm/v8/Accounts", json={"data": [{"Account_Name": n}
                                                               for n in names]})
    assert answer.status_code in (200, 201), answer.text
    return {n: row["details"]["id"] for n, row in zip(names, answer.json()["data"], strict=True)}


def variants(name: str) -> list[str]:
    """Names equal to ``name`` once case, spaces and Unicode normal form are ignored."""
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name)
    assert unicodedata.normalize("NFKC", wide) == name and wide != name
    return [name.upper() if name.upper() != name else name.lower(), f"{name}  ", wide]


def test_duplicates_wait_for_review_then_follow_the_decisions(store_any_db, emu_reset,
                                                              crm_http):
    store = store_any_db
    dups = set(crm_by_name(emu_reset)) & set(books_by_name(emu_reset, "business"))
    # Three more accounts whose names differ from an unlinked Books customer's only by case,
    # spaces or normal form: Books would refuse two of them (3062) and take the third as a
    # second customer.
    free = sorted(n for n, recs in books_by_name(emu_reset, "business").items()
                  if n not in dups and n.isascii() and n.upper() != n)[0]
    hostile = add_accounts(crm_http, variants(free))
    books_before = books_customers(emu_reset)

    state, run = sync(store, scope="both", duplicates="review")
    assert state.is_completed() and run.state == "completed" and failures(store) == []
    books_now = books_customers(emu_reset)
    assert set(books_now) >= set(books_before)
    made = [r["contact_name"] for i, r in books_now.items() if i not in books_before]
    for name in dups | {free}:  # nothing was created or linked on a guess
        assert len(books_by_name(emu_reset)[name]) == 1
        assert not any(unicodedata.normalize("NFKC", m).casefold().strip() == name.casefold()
                       for m in made)

    listed = json.loads(cli("duplicates", "--module", "customers", "--json").output)
    queue = {e["key"]: e for e in listed["duplicates"]}
    by_name = {e["name"]: e for e in queue.values()}
    for name in dups:  # one entry per pair: the CRM account, the Books customer its candidate
        entry = by_name[name]
        assert entry["side"] == "crm" and entry["evidence"] == [EXACT_EVIDENCE]
        [candidate] = entry["candidates"]
        assert candidate["name"] == name and candidate["id"] in books_before
    for name, crm_id in hostile.items():
        entry = queue[f"crm/Accounts/{crm_id}"]
        assert entry["evidence"] == [EXACT_EVIDENCE] and entry["name"] == name.strip()
    assert any(e["evidence"] == [CLOSE_EVIDENCE] for e in queue.values())  # near-duplicates
    assert {e.record_key for e in store.reviews("customers")} == set(queue)

    # Decide: pair one, separate one, skip one.
    paired, separated, skipped = (by_name[n] for n in sorted(dups)[:3])
    books_of = paired["candidates"][0]["id"]
    result = cli("duplicates", "pair", paired["key"], books_of)
    assert result.exit_code == 0, result.output
    assert cli("duplicates", "skip", skipped["key"]).exit_code == 0
    assert cli("duplicates", "skip", "crm/Accounts/404").exit_code == 2
    # Bad pairs are refused in one sentence, and the entry stays queued, nothing linked.
    individual = sorted(books_customers(emu_reset, "individual"))[0]
    for other, words in ((individual, "pair records of the same type"),
                         ("999999", "Books has no contact")):
        result = cli("duplicates", "pair", separated["key"], other)
        assert result.exit_code == 2 and words in result.output, result.output
    assert store.find_link("customers", crm_id=separated["id"]) is None
    assert separated["key"] in {e.record_key for e in store.reviews("customers")}
    assert cli("duplicates", "separate", separated["key"]).exit_code == 0

    state, run = sync(store)  # incremental: the decided records are read by id
    assert state.is_completed() and failures(store) == []
    link = store.find_link("customers", crm_id=paired["id"])
    assert link is not None and link.books_id == books_of and link.made_by == "manual"
    assert cf(books_customers(emu_reset)[books_of]) == paired["id"]  # the ids are stamped
    copies = books_by_name(emu_reset)[f"{separated['name']} (2)"]
    assert [cf(c) for c in copies] == [separated["id"]]  # the copy carries the suffix
    [event] = [e for e in store.events(run.id).to_dict("records")
               if e["record_key"] == separated["key"]]
    assert event["action"] == "cloned"  # the run says which name the copy got, and why
    assert f"named '{separated['name']} (2)' in Books" in event["message"]
    assert store.find_link("customers", crm_id=skipped["id"]) is None
    left = {e.record_key for e in store.reviews("customers")}
    assert left == set(queue) - {paired["key"], separated["key"], skipped["key"]}

    clear_stats(emu_reset)
    state, _ = sync(store)  # settled: nothing repeats, nothing fails
    assert state.is_completed() and failures(store) == []
    assert writes(emu_reset) == []
    assert len(books_by_name(emu_reset)[free]) == 1


def test_link_and_unlink_by_hand_with_their_refusals(store, emu_reset):
    accounts = crm(emu_reset)
    business = books_customers(emu_reset, "business")
    individual = books_customers(emu_reset, "individual")
    vendor = next(i for i, r in emu_reset.emu.books.org().records["contacts"].items()
                  if r["contact_type"] == "vendor")
    taken = set(books_by_name(emu_reset))
    account_id = next(i for i in sorted(accounts) if accounts[i]["Account_Name"] not in taken)
    account_name = accounts[account_id]["Account_Name"]
    books_id = next(i for i, r in business.items() if r["contact_name"] != account_name)
    runs_before = len(store.list_runs(module="customers", limit=100))
    clear_stats(emu_reset)

    refusals = {
        ("customers", account_id, sorted(individual)[0]): "pair records of the same type",
        ("customers", "999999", books_id): "the CRM has no",
        ("customers", account_id, "999999"): "Books has no contact",
        ("customers", account_id, vendor): "is a vendor, not a customer",
        ("deals", account_id, books_id): "unknown module",
    }
    for args, words in refusals.items():
        result = cli("link", *args)
        assert result.exit_code == 2, result.output
        assert words in result.output and "nothing was written" in result.output
        assert "Traceback" not in result.output
    assert cli("unlink", "customers", account_id).exit_code == 2  # not linked
    assert writes(emu_reset) == [] and store.links("customers").empty
    assert len(store.list_runs(module="customers", limit=100)) == runs_before

    result = cli("link", "customers", account_id, books_id)
    assert result.exit_code == 0, result.output
    other_account = next(i for i in sorted(accounts) if i != account_id)
    result = cli("link", "customers", other_account, books_id)  # Books side taken
    assert result.exit_code == 2 and "already linked to CRM record" in result.output

    state, _ = sync(store)  # the pair syncs: the CRM wins a first pairing
    assert state.is_completed(), [f["message"] for f in failures(store)]
    record = books_customers(emu_reset)[books_id]
    assert record["contact_name"] == account_name and cf(record) == account_id
    assert crm(emu_reset)[account_id]["Books_Id__c"] == books_id

    result = cli("unlink", "customers", f"books/contacts/{books_id}")
    assert result.exit_code == 0, result.output
    assert store.find_link("customers", crm_id=account_id) is None
    assert cf(books_customers(emu_reset)[books_id]) is None
    assert not crm(emu_reset)[account_id].get("Books_Id__c")
    actions = [e["action"] for run in store.list_runs(module="customers", limit=3)
               for e in store.events(run.id).to_dict("records")]
    assert "linked" in actions and "unlinked" in actions
