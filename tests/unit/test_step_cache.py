"""The steps' cache key (tasks/policy.py: Fingerprint): a fingerprint of the inputs from the
columns that tell records apart, stable across processes, never a pickle of whole frames."""

from __future__ import annotations

import pandas as pd

from tasks.family import Fetched
from tasks.policy import Fingerprint

KEY = Fingerprint()


def key(**inputs) -> str:
    return KEY.compute_key(None, inputs, {})


def fetched(ids, stamp="2026-12-01T10:00:00+00:00", name="Acme") -> Fetched:
    frame = pd.DataFrame({"id": ids, "Modified_Time": [stamp] * len(ids),
                          "Account_Name": [name] * len(ids)}, dtype=object)
    return Fetched({"Accounts": frame})


def test_the_same_inputs_give_the_same_key():
    assert key(crm=fetched(["1", "2"]), again=False) == key(crm=fetched(["1", "2"]), again=False)


def test_other_records_stamps_or_arguments_give_another_key():
    base = key(crm=fetched(["1", "2"]), again=False)
    assert key(crm=fetched(["1", "3"]), again=False) != base
    assert key(crm=fetched(["1", "2"], stamp="2026-12-01T10:00:01+00:00"), again=False) != base
    assert key(crm=fetched(["1", "2"]), again=True) != base
    assert key(books=fetched(["1", "2"]), again=False) != base  # another parameter


def test_within_a_run_records_are_told_apart_by_their_ids_and_stamps_only():
    # what the key leaves out: the values of records with the same ids and stamps (a step's
    # records come from the earlier steps' persisted results of the same flow run)
    assert key(crm=fetched(["1"], name="Acme")) == key(crm=fetched(["1"], name="Other"))


def test_a_frame_without_key_columns_and_batches_of_rows_are_hashed_whole():
    assert key(f=pd.DataFrame({"x": [1]})) != key(f=pd.DataFrame({"x": [2]}))
    assert key(units=[{"record_key": "a", "books_payload": {"name": "A"}}]) != key(
        units=[{"record_key": "a", "books_payload": {"name": "B"}}])


def test_a_step_without_inputs_is_not_cached():
    assert KEY.compute_key(None, {}, {}) is None
