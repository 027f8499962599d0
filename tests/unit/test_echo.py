"""Echo detection in fetch: a record is our own write's echo only when its stamp matches."""

from tasks.fetch import _is_echo


def test_a_record_without_a_stamp_is_never_an_echo():
    # Books items carry no last_modified_time: treating None == None as an echo dropped
    # every item from the fetch (the bug this test pins).
    assert not _is_echo({}, "1", None)
    assert not _is_echo({"1": None}, "1", None)


def test_the_stamp_of_our_own_write_is_an_echo_and_any_other_is_a_change():
    echoes = {"1": "2026-11-28T03:00:00+0000"}
    assert _is_echo(echoes, "1", "2026-11-28T03:00:00+0000")
    assert _is_echo(echoes, 1, "2026-11-28T03:00:00+0000")  # ids compare as strings
    assert not _is_echo(echoes, "1", "2026-11-28T03:00:05+0000")
    assert not _is_echo(echoes, "2", "2026-11-28T03:00:00+0000")
