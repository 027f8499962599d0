"""Push batches: at most the batch size, in order, and never across two write groups (each
group is a call of its own, so a batch across two CRM modules would cost a call more)."""

from __future__ import annotations

from tasks.documents import TransactionsFamily
from tasks.policy import batches


def test_plain_batches_are_consecutive_slices():
    assert batches(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert batches([], 100) == []


def test_grouped_batches_never_mix_groups_and_keep_the_groups_first_order():
    units = [("Quotes", n) for n in range(150)] + [("Sales_Orders", n) for n in range(60)] + [
        ("Quotes", 150)]
    got = batches(units, 100, group=lambda unit: unit[0])
    assert [len(b) for b in got] == [100, 51, 60]
    assert all(len({module for module, _ in batch}) == 1 for batch in got)
    assert got[1][-1] == ("Quotes", 150) and got[2][0] == ("Sales_Orders", 0)


def test_transactions_write_to_the_crm_one_call_per_module_and_kind_of_write():
    family = TransactionsFamily()
    quote = {"crm_module": "Quotes", "action": "update"}
    shown = {"crm_module": "Quotes", "action": "link"}
    assert family.batch_group("crm", quote) != family.batch_group("crm", shown)
    assert family.batch_group("crm", quote) != family.batch_group(
        "crm", {**quote, "crm_module": "Sales_Orders"})
    assert family.batch_group("books", quote) is None
