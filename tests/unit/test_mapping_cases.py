"""Recorded mapping cases, replayed: each file under tests/cases/mapping/ holds one record as
a side sends it and what crmbooks must make of it for the other side (a body, or the reasons
it cannot go). Only the pure mappers run.

A new case is a new file (what, mapper, its arguments, input). Record its expectation — and
re-record them all after a deliberate change of a mapping — with
`.venv/bin/python tests/unit/test_mapping_cases.py --record`, which rewrites every file's
`expect` from what the code makes now: read the diff before committing it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from crmbooks.store.jsonsafe import json_safe
from crmbooks.sync.mapping import to_books, to_crm
from crmbooks.sync.modules import module_spec
from crmbooks.sync.transactions import books_body
from crmbooks.sync.transactions_crm import crm_body
from crmbooks.sync.triggers import deal_content
from mappings.schema import default_mapping

CASES = Path(__file__).resolve().parents[1] / "cases" / "mapping"


def cases() -> list[Path]:
    """Every recorded case file."""
    return sorted(CASES.glob("*.yaml"))


def load(path: Path) -> dict:
    """One case: what, mapper, its arguments, input, expect."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def run(case: dict) -> dict:
    """What the mapper makes of the case's input: {"body": …} or {"failure": …}."""
    mapper, given = case["mapper"], case["input"]
    if mapper in ("records.to_books", "records.to_crm"):
        spec = module_spec(case["module"])
        kind = spec.kind(case["kind"])
        frame = pd.DataFrame([given], dtype=object)
        if mapper == "records.to_books":
            mapped, failed = to_books(frame, default_mapping(case["module"]), kind, spec,
                                      base_currency=case.get("base_currency"))
        else:
            mapped, failed = to_crm(frame, default_mapping(case["module"]), kind, spec)
        if not failed.empty:
            return {"failure": str(failed.iloc[0]["message"])}
        return {"body": json_safe(mapped.iloc[0]["payload"])}
    if mapper == "transactions.to_books":
        body, why = books_body(given, case["crm_module"], customers_mode=case.get(
            "customers_mode", "accounts"), links=case.get("links", {}),
            currencies=frozenset(case.get("currencies", [])),
            base_currency=case.get("base_currency"))
        return {"failure": why} if body is None else {"body": json_safe(body)}
    if mapper == "transactions.to_crm":
        body, why = crm_body(given, case["resource"], party=case.get("party"),
                             items_back=case.get("items_back", {}),
                             picklist=case.get("picklist"), present=set(case["present"]))
        return {"failure": why} if body is None else {"body": json_safe(body)}
    if mapper == "deals.content":
        return {"body": json_safe(deal_content(given, case["customer_id"],
                                               case.get("base_currency")))}
    raise ValueError(f"unknown mapper {mapper!r}")


def record() -> None:
    """Rewrite every case's expectation from what the code makes now."""
    for path in cases():
        case = load(path)
        case["expect"] = run(case)
        path.write_text(yaml.safe_dump(case, sort_keys=False, allow_unicode=True),
                        encoding="utf-8")
        print(f"recorded {path.name}")


@pytest.mark.parametrize("path", cases(), ids=lambda p: p.stem)
def test_recorded_case(path):
    case = load(path)
    assert "expect" in case, f"{path.name} has no expectation: record it (see above)"
    assert run(case) == case["expect"], case["what"]


def test_there_are_cases_for_every_mapper():
    mappers = {load(p)["mapper"] for p in cases()}
    assert mappers == {"records.to_books", "records.to_crm", "transactions.to_books",
                       "transactions.to_crm", "deals.content"}


if __name__ == "__main__" and "--record" in sys.argv:
    record()
