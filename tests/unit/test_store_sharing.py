"""The rows every process of a connection shares: the token row's lock, and the request
budget's slots (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

from crmbooks.store import Store


def test_reserved_slots_never_overlap_across_stores_and_a_hold_moves_every_later_one(store):
    # Two Store objects on one database stand for two processes.
    other = Store(store.engine)
    first = store.reserve_requests("books x 1", 0.5, 1, now=100.0)
    second = other.reserve_requests("books x 1", 0.5, 3, now=100.0)
    third = store.reserve_requests("books x 1", 0.5, 1, now=100.2)
    assert (first, second, third) == (100.0, 100.5, 102.0)
    assert store.reserve_requests("books y 2", 0.5, 1, now=100.0) == 100.0  # its own budget
    other.hold_requests("books x 1", until=130.0)
    assert store.reserve_requests("books x 1", 0.5, 1, now=101.0) == 130.0
    other.hold_requests("books x 1", until=120.0)  # an earlier hold moves nothing back
    assert store.reserve_requests("books x 1", 0.5, 1, now=101.0) == 130.5


def test_one_thread_at_a_time_holds_the_token_row_and_the_next_sees_its_token(store):
    minted = []

    def refresh(name: str) -> None:
        with store.locked_token("k") as slot:
            if slot.ciphertext is None:  # no token yet: this one mints
                minted.append(name)
                slot.store(f"cipher-{name}", 1e10)

    threads = [threading.Thread(target=refresh, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(minted) == 1
    assert store.shared_token("k") == (f"cipher-{minted[0]}", 1e10, 1)


def test_a_failure_inside_the_lock_keeps_the_token_that_was_there(store):
    with store.locked_token("k") as slot:
        slot.store("old", 5.0)
    try:
        with store.locked_token("k") as slot:
            slot.store("half-done", 9.0)
            raise RuntimeError("Zoho Accounts answered nonsense")
    except RuntimeError:
        pass
    assert store.shared_token("k") == ("old", 5.0, 1)
