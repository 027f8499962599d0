"""Which family of hooks each module plugs into the pipeline (tasks/family.py)."""

from __future__ import annotations

from crmbooks.sync.registry import DEALS, MODULE_ORDER, RECORD_MODULES, TRANSACTIONS
from tasks.deals import DealsFamily
from tasks.documents import TransactionsFamily
from tasks.family import Family
from tasks.records import RecordsFamily

FAMILIES: dict[str, Family] = {
    **{module: RecordsFamily(module) for module in RECORD_MODULES},
    TRANSACTIONS: TransactionsFamily(),
    DEALS: DealsFamily(),
}
assert set(FAMILIES) == set(MODULE_ORDER), "every module needs a family"


def family_of(module: str) -> Family:
    """The family of a module; KeyError naming the modules otherwise."""
    try:
        return FAMILIES[module]
    except KeyError:
        raise KeyError(f"unknown module {module!r}; modules: {', '.join(MODULE_ORDER)}") \
            from None
