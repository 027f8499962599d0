"""Cursors skip their own second only when the read that reached them began after it ended,
and the server's clock is read from the Date headers of a read's answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from crmbooks.connectors.http import ReadWatch
from crmbooks.sync.cursors import earliest, newest_stamp, past_its_second

S = datetime(2026, 12, 5, 10, 0, 7, tzinfo=UTC)


def test_a_read_that_began_after_the_cursors_second_moves_the_cursor_past_it():
    assert past_its_second(S, S + timedelta(seconds=1)) == S + timedelta(seconds=1)
    assert past_its_second(S, S + timedelta(minutes=5)) == S + timedelta(seconds=1)


def test_a_read_that_began_inside_the_cursors_second_keeps_it():
    """A change later in that second would carry the same stamp: it must be read again."""
    assert past_its_second(S, S + timedelta(milliseconds=999)) == S
    assert past_its_second(S, S - timedelta(seconds=3)) == S


def test_without_a_cursor_or_a_known_start_nothing_moves():
    assert past_its_second(None, S) is None
    assert past_its_second(S, None) == S


def test_the_earliest_start_of_several_reads_and_none_when_one_is_unknown():
    assert earliest([S, S - timedelta(seconds=2)]) == S - timedelta(seconds=2)
    assert earliest([S, None]) is None
    assert earliest([]) is None


def test_the_newest_stamp_of_a_page_ignores_missing_and_incredible_stamps():
    rows = [{"Modified_Time": "2026-12-05T10:00:07+00:00"}, {"Modified_Time": None}, {},
            {"Modified_Time": "9999-01-01T00:00:00+00:00"}]
    assert newest_stamp("crm", rows, "Modified_Time") == S
    assert newest_stamp("crm", [], "Modified_Time") is None


def test_a_read_began_no_later_than_its_earliest_answer_minus_the_time_it_took():
    read = ReadWatch()
    read.saw(httpx.Response(200, headers={"Date": "Sat, 05 Dec 2026 10:00:09 GMT"}), 0.25)
    read.saw(httpx.Response(200, headers={"Date": "Sat, 05 Dec 2026 10:00:12 GMT"}), 0.1)
    read.saw(httpx.Response(200), 0.1)  # no Date: tells nothing
    read.saw(httpx.Response(200, headers={"Date": "not a date"}), 0.1)
    assert read.began == datetime(2026, 12, 5, 10, 0, 8, 750000, tzinfo=UTC)
