"""What fetching costs: echoes of our own writes are dropped; lookups only while cheaper."""

from tasks.records.fetch import is_echo


def test_a_record_without_a_stamp_is_never_an_echo():
    # Books items carry no last_modified_time: treating None == None as an echo dropped
    # every item from the fetch (the bug this test pins).
    assert not is_echo({}, "1", None)
    assert not is_echo({"1": None}, "1", None)


def test_the_stamp_of_our_own_write_is_an_echo_and_any_other_is_a_change():
    echoes = {"1": "2026-11-28T03:00:00+0000"}
    assert is_echo(echoes, "1", "2026-11-28T03:00:00+0000")
    assert is_echo(echoes, 1, "2026-11-28T03:00:00+0000")  # ids compare as strings
    assert not is_echo(echoes, "1", "2026-11-28T03:00:05+0000")
    assert not is_echo(echoes, "2", "2026-11-28T03:00:00+0000")


def test_a_name_lookup_per_record_only_while_it_is_cheaper_than_one_scan():
    from tasks.records.plan import scan_is_cheaper

    assert not scan_is_cheaper(1, 40)  # one lookup costs what one page costs: keep the lookup
    assert scan_is_cheaper(5, 40)  # five searches cost more than one page of 40
    assert not scan_is_cheaper(5, 2000)  # ten pages cost more than five searches
    assert scan_is_cheaper(11, 2000)
