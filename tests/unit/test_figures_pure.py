"""The accounting figures, pure: computed from Books list rows to the cent, only the changed
ones written, and CRM fields that do not fit named before any write."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from crmbooks.connect import PrerequisiteError, check_figure_fields
from crmbooks.sync.check import figure_problems
from crmbooks.sync.figures import FIELDS, changes, compute, fiscal_year_start, money

D = Decimal
CONTACT = {"outstanding_receivable_amount": "60.25", "unused_credits_receivable_amount": 5,
           "currency_code": "EUR"}


def live_fields(**override) -> list[dict]:
    types = {"Books_Last_Payment_Date__c": "date", "Books_Currency__c": "text"}
    return [{"api_name": name, "data_type": types.get(name, "currency"),
             **override.get(name, {})} for name in FIELDS]


def test_figures_are_computed_to_the_cent_from_the_list_rows():
    invoices = [{"date": "2025-12-31", "status": "paid", "total": "100.005"},
                {"date": "2026-04-01", "status": "sent", "total": 0.1},
                {"date": "2026-05-01", "status": "sent", "total": 0.2},
                {"date": "2026-05-02", "status": "draft", "total": "999"},
                {"date": "2026-05-03", "status": "void", "total": "999"}]
    payments = [{"date": "2026-03-01", "amount": "10"}, {"date": "2026-05-09", "amount": "7.5"}]
    got = compute(CONTACT, invoices, payments, date(2026, 4, 1))
    assert got == {
        "Books_Outstanding__c": D("60.25"), "Books_Unused_Credits__c": D("5.00"),
        "Books_Invoiced_This_Year__c": D("0.30"), "Books_Invoiced_Total__c": D("100.31"),
        "Books_Last_Payment_Date__c": "2026-05-09", "Books_Last_Payment_Amount__c": D("7.50"),
        "Books_Currency__c": "EUR"}
    # Never paid: no last payment (blank in the CRM), not a zero one.
    assert compute(CONTACT, [], [], date(2026, 1, 1))["Books_Last_Payment_Date__c"] is None


def test_only_the_figures_that_changed_are_written():
    new = compute(CONTACT, [], [{"date": "2026-05-09", "amount": "7.5"}], date(2026, 1, 1))
    same = {**new, "Books_Outstanding__c": 60.25, "Books_Unused_Credits__c": "5",
            "Books_Invoiced_Total__c": 0, "Books_Invoiced_This_Year__c": "0.00",
            "Books_Last_Payment_Amount__c": 7.5}
    assert changes(same, new) == {}
    assert changes({**same, "Books_Outstanding__c": 61}, new) == {
        "Books_Outstanding__c": D("60.25")}
    assert changes({}, new).keys() == set(FIELDS)


def test_a_books_amount_that_is_not_a_number_is_named():
    with pytest.raises(ValueError, match="'12,50' is not an amount"):
        money("12,50")


@pytest.mark.parametrize(("start_month", "today", "expected"), [
    (0, date(2026, 3, 5), date(2026, 1, 1)),
    (3, date(2026, 3, 5), date(2025, 4, 1)),
    (3, date(2026, 4, 1), date(2026, 4, 1)),
])
def test_the_fiscal_year_starts_in_books_month(start_month, today, expected):
    assert fiscal_year_start(today, start_month) == expected


def test_figure_fields_that_do_not_fit_are_each_named():
    assert figure_problems("Accounts", live_fields()) == []
    fields = [f for f in live_fields(Books_Currency__c={"data_type": "currency"},
                                     Books_Unused_Credits__c={"read_only": True})
              if f["api_name"] != "Books_Outstanding__c"]
    problems = [str(p) for p in figure_problems("Accounts", fields)]
    assert len(problems) == 3, problems
    assert "no field Books_Outstanding__c" in problems[0] and "create it" in problems[0]
    assert "Books_Unused_Credits__c is read-only" in problems[1]
    assert "Books_Currency__c is of type 'currency'" in problems[2]


def test_connect_refuses_figure_fields_that_do_not_fit_naming_them():
    check_figure_fields({"Accounts": live_fields(), "Contacts": live_fields()})
    with pytest.raises(PrerequisiteError, match="Contacts have no field Books_Currency__c"):
        check_figure_fields({"Accounts": live_fields(), "Contacts": [
            f for f in live_fields() if f["api_name"] != "Books_Currency__c"]})
