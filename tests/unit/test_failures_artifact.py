"""The failures artifact reads in a 1400 px window: markdown, one block per failed record with
"what to do" before the provider's message, nothing cut (the text wraps), markdown in a
message shown as text; and the first reasons a Failed run's one-line message carries."""

from __future__ import annotations

from tasks.report import FAILURE_DETAIL_ROWS, failures_markdown, first_reasons


def failure(n: int = 1, message: str = "Website is 240 characters, longer than the 200 "
            "allowed", hint: str = "shorten it to 200 characters in the source record"):
    return {"record_key": f"crm/Accounts/57257670000001000{n:02d}", "side": "books",
            "field": "website", "code": "TOO_LONG", "message": message, "hint": hint}


def test_each_failure_is_a_block_with_what_to_do_first_and_nothing_cut():
    long_message = "Books refused it: " + "a very long explanation " * 40
    text = failures_markdown([failure(1, message=long_message), failure(2)])
    assert text.startswith("**2 failed record(s).**")
    first = text.index("crm/Accounts/5725767000000100001")
    assert text.index("what to do: shorten it", first) < text.index("message: Books", first)
    assert " ".join(long_message.split()) in text  # whole: the UI wraps it, nothing is cut
    assert "`TOO_LONG`" in text and "field `website`" in text
    assert "|" not in text  # no table: a table artifact's fixed columns cut long cells


def test_markdown_in_a_message_stays_text():
    text = failures_markdown([failure(message="<script>x</script> [link](http://x) # *b*\nnext")])
    assert "<script>" not in text and "\\<script\\>" in text
    assert "\\[link\\]" in text and "\\# \\*b\\*" in text and "\\*b\\* next" in text


def test_no_failures_and_many_failures():
    assert failures_markdown([]) == "No failed records."
    many = failures_markdown([failure(n % 100) for n in range(FAILURE_DETAIL_ROWS + 5)])
    assert f"**{FAILURE_DETAIL_ROWS}. " in many and f"**{FAILURE_DETAIL_ROWS + 1}. " not in many
    assert "… and 5 more: `crmbooks history --failures` lists them all." in many


def test_first_reasons_are_short_single_lines():
    reasons = first_reasons([failure(1, message="line one\nline two " + "x" * 300),
                             failure(2), failure(3), failure(4)])
    assert len(reasons) == 3
    assert reasons[0].startswith("crm/Accounts/5725767000000100001: TOO_LONG line one line two")
    assert len(reasons[0]) == 140 and reasons[0].endswith("…") and "\n" not in reasons[0]
    assert reasons[1] == ("crm/Accounts/5725767000000100002: TOO_LONG Website is 240 "
                          "characters, longer than the 200 allowed")
