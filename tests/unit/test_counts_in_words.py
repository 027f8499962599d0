"""A run's counts in words, as the last line of its Prefect log says them."""

from __future__ import annotations

from crmbooks.sync.outcomes import COUNT_KEYS, counts_in_words


def tally(**sides: dict[str, int]) -> dict[str, dict[str, int]]:
    return {side: {key: sides.get(side, {}).get(key, 0) for key in COUNT_KEYS}
            for side in ("books", "crm")}


def test_counts_in_words_name_each_side_and_leave_out_zeros():
    said = counts_in_words(tally(books={"created": 12, "updated": 3, "failed": 1},
                                 crm={"updated": 2}))
    assert said == "Books: 12 created, 3 updated, 1 failed; CRM: 2 updated"


def test_a_run_that_changed_nothing_says_so():
    assert counts_in_words(tally()) == "nothing to change"
    assert counts_in_words({}) == "nothing to change"
