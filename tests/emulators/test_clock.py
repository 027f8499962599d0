"""The emulators' clock: every answer's Date header and every modified stamp come from it, and
tests move it forward instead of waiting."""

from __future__ import annotations

from email.utils import parsedate_to_datetime


def test_the_date_header_follows_the_emulators_clock(emu_reset, crm_http):
    emu = emu_reset.emu
    before = parsedate_to_datetime(crm_http.get("/crm/v8/org").headers["date"])
    emu.advance_clock(3600)
    after = parsedate_to_datetime(crm_http.get("/crm/v8/org").headers["date"])
    assert 3600 <= (after - before).total_seconds() <= 3660
    assert len(crm_http.get("/crm/v8/org").headers.get_list("date")) == 1  # the server's own is off


def test_a_write_is_stamped_by_the_emulators_clock_and_reset_puts_it_back(emu_reset, crm_http):
    emu = emu_reset.emu
    emu.advance_clock(7200)
    ahead = emu.now()
    [record_id] = [r for r in emu.crm.records("Vendors")][:1]
    answer = crm_http.put("/crm/v8/Vendors", json={"data": [{"id": record_id,
                                                             "Description": "stamped"}]})
    assert answer.status_code == 200, answer.text
    stamp = emu.crm.records("Vendors")[record_id]["Modified_Time"]
    assert stamp >= ahead.strftime("%Y-%m-%dT%H:%M:%S")
    emu.reset()
    assert emu.now() < ahead
