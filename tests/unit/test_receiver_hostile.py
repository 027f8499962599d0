"""The event receiver under hostile requests: every one is answered with a 4xx and a one-line
reason, never a 500, and queues nothing; a burst of large bodies leaves its memory where it
was.

The receiver runs on a real socket in this process (its workers replaced by recorders), over
a stored connection with two Books organizations; no emulator is needed, since nothing it
refuses reaches Zoho. Requests are sent byte for byte (tests/support/hostile.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from crmbooks.app.receiver.intake import MAX_BODY_BYTES, MAX_DEPTH, too_deep
from crmbooks.app.receiver.server import BOOKS_HEADER, Receiver, load_secrets
from crmbooks.store import Store
from support.hostile import exchange, nested, rss_mb
from support.receiver import wait_for

PRIMARY, EXTRA = "20099001", "20099002"
DEAL = "5725767000000411001"
ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """A worker handler that keeps what it is given."""

    def __init__(self):
        self.batches: list[list[str]] = []

    def __call__(self, keys: list[str]) -> None:
        self.batches.append(list(keys))


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    """A receiver over a connection with two organizations (transactions on), not watching
    any Zoho; its workers record what they would run."""
    from crmbooks.runtime import reset_runtime_cache

    home = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMBOOKS_HOME", str(home))
        mp.setenv("CRMBOOKS_DATABASE_URL", f"sqlite:///{home / 'crmbooks.db'}")
        reset_runtime_cache()
        store = Store.open(org_id=PRIMARY)
        store.save_connection(books_org_id=PRIMARY, extra_books_org_ids=[EXTRA])
        store.save_settings("transactions", {"enabled": True, "modules": ["invoices"]})
        deals, transactions = Recorder(), Recorder()
        running = Receiver(watch=False, debounce_s=0.05, handler=deals,
                           transactions_handler=transactions).start()
        running.recorded = (deals, transactions)
        running.store = store
        try:
            yield running
        finally:
            running.stop()
            reset_runtime_cache()


def queued(receiver) -> int:
    """Everything the receiver queued or ran since the last `forget`."""
    deals, transactions = receiver.recorded
    kept = receiver.store.inbox_summary()
    return (receiver.deals.pending() + receiver.transactions.pending() + len(deals.batches)
            + len(transactions.batches) + kept["pending"] + kept["failed"])


def forget(receiver) -> None:
    assert receiver.deals.idle() and receiver.transactions.idle()
    for recorder in receiver.recorded:
        recorder.batches.clear()


# --------------------------------------------------------------------- the cases, as data
TOKEN, SECRET = "<token>", "<secret>"
JSON = [("Content-Type", "application/json")]
BOOKS = [*JSON, (BOOKS_HEADER, SECRET)]
NOTIFY = "/crm/notify"
HOOK = f"/books/webhook/{PRIMARY}"


def crm(**fields) -> bytes:
    """A CRM notification of one deal with the right token, changed by `fields`."""
    body = {"module": "Deals", "ids": [DEAL], "operation": "update", "token": TOKEN,
            "affected_fields": [{DEAL: ["Stage"]}]}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def books(data=None, **fields) -> bytes:
    """A Books invoice webhook, changed by `fields` and `data`."""
    record = {"invoice_id": "460000000099001", "last_modified_time": "2026-11-28T06:00:02+0000"}
    record.update(data or {})
    return json.dumps({"event_type": "invoice_updated", "data": record, **fields}).encode()


# (name, method, path, headers, body, status, the reason says)
CASES = [
    # ---- the channel token, of every JSON type
    ("token is a number", "POST", NOTIFY, JSON, crm(token=12345), 400,
     "token must be a string, not a number"),
    ("token is a float", "POST", NOTIFY, JSON, crm(token=1.5), 400, "not a number"),
    ("token is a boolean", "POST", NOTIFY, JSON, crm(token=True), 400, "not a boolean"),
    ("token is a list", "POST", NOTIFY, JSON, crm(token=[TOKEN]), 400, "not a list"),
    ("token is an object", "POST", NOTIFY, JSON, crm(token={"t": TOKEN}), 400,
     "not an object"),
    ("token is null", "POST", NOTIFY, JSON, crm(token=None), 401, "no channel token"),
    ("token is empty", "POST", NOTIFY, JSON, crm(token=""), 401, "no channel token"),
    ("token is missing", "POST", NOTIFY, JSON, crm(token=...), 401, "no channel token"),
    ("token is wrong", "POST", NOTIFY, JSON, crm(token="wrong"), 403, "invalid channel token"),
    ("token is a lone surrogate", "POST", NOTIFY, JSON,
     b'{"module": "Deals", "ids": [1], "token": "\\ud800"}', 403, "invalid channel token"),
    ("token is 500,000 characters", "POST", NOTIFY, JSON, crm(token="x" * 500_000), 403,
     "invalid channel token"),
    # ---- ids of every type
    ("ids is a number", "POST", NOTIFY, JSON, crm(ids=5), 400,
     "ids must be a list of record ids, not a number"),
    ("ids is an object", "POST", NOTIFY, JSON, crm(ids={"a": 1}), 400, "not an object"),
    ("ids is a string", "POST", NOTIFY, JSON, crm(ids=DEAL), 400, "not a string"),
    ("ids is null", "POST", NOTIFY, JSON, crm(ids=None), 400, "not null"),
    ("ids is missing", "POST", NOTIFY, JSON, crm(ids=...), 400, "not null"),
    ("ids is empty", "POST", NOTIFY, JSON, crm(ids=[]), 400, "ids is empty"),
    ("ids holds a list", "POST", NOTIFY, JSON, crm(ids=[[DEAL]]), 400,
     "each of ids must be a record id (digits), not a list"),
    ("ids holds lists nested", "POST", NOTIFY, JSON, crm(ids=[[[[1]]]]), 400, "not a list"),
    ("ids holds an object", "POST", NOTIFY, JSON, crm(ids=[{"id": DEAL}]), 400,
     "not an object"),
    ("ids holds null", "POST", NOTIFY, JSON, crm(ids=[None]), 400, "not null"),
    ("ids holds a boolean", "POST", NOTIFY, JSON, crm(ids=[True]), 400, "not a boolean"),
    ("ids holds a float", "POST", NOTIFY, JSON, crm(ids=[1.5]), 400, "not a number"),
    ("ids holds an empty string", "POST", NOTIFY, JSON, crm(ids=[""]), 400, "digits"),
    ("ids holds spaces", "POST", NOTIFY, JSON, crm(ids=["   "]), 400, "digits"),
    ("ids holds letters", "POST", NOTIFY, JSON, crm(ids=["12a"]), 400, "digits"),
    ("ids holds a key separator", "POST", NOTIFY, JSON, crm(ids=["1|books|x"]), 400,
     "digits"),
    ("ids holds a negative number", "POST", NOTIFY, JSON, crm(ids=[-5]), 400, "digits"),
    ("ids holds a 40-digit number", "POST", NOTIFY, JSON, crm(ids=[10**40]), 400, "digits"),
    ("ids holds a 5,000-digit number", "POST", NOTIFY, JSON,
     b'{"module": "Deals", "token": "t", "ids": [' + b"7" * 5000 + b"]}", 400,
     "not valid JSON"),
    ("ids holds 1e999", "POST", NOTIFY, JSON,
     b'{"module": "Deals", "token": "' + TOKEN.encode() + b'", "ids": [1e999]}', 400,
     "not a number"),
    ("ids holds 1,001 ids", "POST", NOTIFY, JSON, crm(ids=list(range(1, 1002))), 400,
     "more than 1000 ids"),
    # ---- the other fields
    ("module is a number", "POST", NOTIFY, JSON, crm(module=5), 400,
     "module must be a string"),
    ("module is missing", "POST", NOTIFY, JSON, crm(module=...), 400, "module is missing"),
    ("operation is a list", "POST", NOTIFY, JSON, crm(operation=["update"]), 400,
     "operation must be a string"),
    ("affected_fields is a string", "POST", NOTIFY, JSON, crm(affected_fields="Stage"), 400,
     "affected_fields must be a list"),
    ("affected_fields maps to a string", "POST", NOTIFY, JSON,
     crm(affected_fields=[{DEAL: "Stage"}]), 400, "affected_fields must be a list"),
    ("channel_id is an object", "POST", NOTIFY, JSON, crm(channel_id={"a": 1}), 400,
     "channel_id must be a string"),
    # ---- the body: shape, JSON, nesting, encodings
    ("the body is a list", "POST", NOTIFY, JSON, b"[" + crm() + b"]", 400,
     "a JSON object is expected, not a list"),
    ("the body is a string", "POST", NOTIFY, JSON, b'"x"', 400, "not a string"),
    ("the body is null", "POST", NOTIFY, JSON, b"null", 400, "not null"),
    ("the body is empty", "POST", NOTIFY, JSON, b"", 400, "the body is empty"),
    ("the body is spaces", "POST", NOTIFY, JSON, b"  \n ", 400, "the body is empty"),
    ("the body is not JSON", "POST", NOTIFY, JSON, b"{not json", 400, "not valid JSON"),
    ("the body has NaN", "POST", NOTIFY, JSON, b'{"token": NaN}', 400, "NaN is not JSON"),
    ("nested 10,000 deep", "POST", NOTIFY, JSON, nested(10_000), 400,
     f"nested deeper than {MAX_DEPTH} levels"),
    ("nested 10,000 deep beside a right token", "POST", NOTIFY, JSON,
     crm()[:-1] + b', "x": ' + nested(10_000) + b"}", 400, "nested deeper"),
    ("nested one level too deep", "POST", NOTIFY, JSON, nested(MAX_DEPTH + 1), 400,
     "nested deeper"),
    ("brackets inside a string are no nesting", "POST", NOTIFY, JSON,
     crm(token="wrong", x="[" * 10_000), 403, "invalid channel token"),
    ("escaped quotes inside a string", "POST", NOTIFY, JSON,
     crm(token="wrong", x='\\"[[' * 1000), 403, "invalid channel token"),
    ("the body is not UTF-8", "POST", NOTIFY, JSON, b'{"token": "\xff\xfe"}', 400,
     "not UTF-8"),
    ("the body is UTF-16", "POST", NOTIFY, JSON, crm().decode().encode("utf-16"), 400,
     "not UTF-8"),
    ("the charset is latin-1", "POST", NOTIFY,
     [("Content-Type", "application/json; charset=latin-1")], crm(), 415,
     "the charset must be UTF-8"),
    ("a form body", "POST", NOTIFY,
     [("Content-Type", "application/x-www-form-urlencoded")], b"token=x&ids=1", 415,
     "content type must be application/json"),
    ("a multipart body", "POST", NOTIFY, [("Content-Type", "multipart/form-data; b=x")],
     crm(), 415, "content type must be application/json"),
    ("an XML body", "POST", NOTIFY, [("Content-Type", "application/xml")], b"<a/>", 415,
     "content type must be application/json"),
    ("a gzipped body", "POST", NOTIFY, [*JSON, ("Content-Encoding", "gzip")], crm(), 415,
     "compressed bodies are not accepted"),
    # ---- methods and paths
    ("GET the notification URL", "GET", NOTIFY, [], b"", 405, "method not allowed"),
    ("PUT the notification URL", "PUT", NOTIFY, JSON, crm(), 405, "method not allowed"),
    ("DELETE a webhook URL", "DELETE", HOOK, [], b"", 405, "method not allowed"),
    ("a trailing slash", "POST", NOTIFY + "/", JSON, crm(), 404, "not found"),
    ("a dot-dot path", "POST", "/books/webhook/../../crm/notify", JSON, crm(), 404,
     "not found"),
    ("an encoded slash in the organization", "POST",
     "/books/webhook/..%2F..%2Fcrm%2Fnotify", BOOKS, books(), 404, "not found"),
    ("an encoded organization", "POST", "/books/webhook/%32%30%30x", BOOKS, books(), 404,
     "no such Books organization"),
    ("an organization of letters", "POST", "/books/webhook/abc", BOOKS, books(), 404,
     "no such Books organization"),
    ("a path below an organization", "POST", HOOK + "/invoices", BOOKS, books(), 404,
     "not found"),
    ("an unknown path", "POST", "/admin", JSON, crm(), 404, "not found"),
    # ---- Books webhooks
    ("no Books secret", "POST", HOOK, JSON, books(), 401, "no webhook secret"),
    ("a wrong Books secret", "POST", HOOK, [*JSON, (BOOKS_HEADER, "wrong")], books(), 403,
     "invalid webhook secret"),
    ("a Books secret in latin-1", "POST", HOOK, [*JSON, (BOOKS_HEADER, "caf\xe9")], books(),
     403, "invalid webhook secret"),
    ("an organization not connected", "POST", "/books/webhook/99999999", BOOKS, books(), 404,
     "Books organization 99999999 is not connected"),
    ("the invoice id is an object", "POST", HOOK, BOOKS, books({"invoice_id": {"a": 1}}),
     400, "invoice_id must be a record id (digits), not an object"),
    ("the invoice id is a list", "POST", HOOK, BOOKS, books({"invoice_id": [1]}), 400,
     "not a list"),
    ("the invoice id is a boolean", "POST", HOOK, BOOKS, books({"invoice_id": True}), 400,
     "not a boolean"),
    ("the invoice id holds key separators", "POST", HOOK, BOOKS,
     books({"invoice_id": "1|crm|Deals|2"}), 400, "digits"),
    ("the stamp is a number", "POST", HOOK, BOOKS, books({"last_modified_time": 5}), 400,
     "last_modified_time must be a date-time string"),
    ("the stamp holds a key separator", "POST", HOOK, BOOKS,
     books({"last_modified_time": "2026|x"}), 400, "date-time string"),
    ("the event type is a number", "POST", HOOK, BOOKS,
     json.dumps({"event_type": 5, "data": {}}).encode(), 400, "event_type must be a string"),
    ("the invoice is a string", "POST", HOOK, BOOKS, books()[:0] + json.dumps(
        {"event_type": "invoice_updated", "data": "x"}).encode(), 400,
     "carries no invoice object"),
    ("a Books body nested 10,000 deep", "POST", HOOK, BOOKS, nested(10_000), 400,
     "nested deeper"),
    ("a Books body that is a list", "POST", HOOK, BOOKS, b"[" + books() + b"]", 400,
     "a JSON object is expected"),
    # ---- sizes (declared; streamed bodies have tests of their own below)
    ("a declared 20 MB body", "POST", NOTIFY, JSON, None, 413,
     f"larger than {MAX_BODY_BYTES} bytes"),
    ("a declared 20 MB Books body without a secret", "POST", HOOK, JSON, None, 413,
     "larger than"),
    ("a Content-Length of letters", "POST", NOTIFY, [*JSON, ("Content-Length", "ten")],
     None, 400, ""),
]


def test_the_table_has_forty_cases_or_more_with_distinct_names():
    names = [case[0] for case in CASES]
    assert len(names) >= 40 and len(set(names)) == len(names)


@pytest.mark.parametrize(("name", "method", "path", "headers", "body", "status", "reason"),
                         CASES, ids=[case[0] for case in CASES])
def test_a_hostile_request_gets_a_4xx_with_its_reason_and_queues_nothing(
        receiver, name, method, path, headers, body, status, reason):
    forget(receiver)
    swap = {TOKEN: receiver.keys["crm_token"], SECRET: receiver.keys["books_secret"]}
    headers = [(k, swap.get(v, v)) for k, v in headers]
    declared = dict(headers).pop("Content-Length", None)
    headers = [(k, v) for k, v in headers if k != "Content-Length"]
    if body is None:  # a declared size: only the headers are sent
        declared, body = declared or 20 * 2**20, b""
    body = body.replace(TOKEN.encode(), receiver.keys["crm_token"].encode())
    got, answer, raw = exchange(receiver.url, method, path, headers, body,
                                declared_length=declared,
                                send_at_most=0 if declared is not None else None)
    assert got == status, (name, got, raw[:300])
    if reason:  # (a Content-Length of letters is refused by the HTTP parser itself)
        assert isinstance(answer, dict) and set(answer) == {"error"}, raw[:300]
        assert reason in answer["error"] and "\n" not in answer["error"], answer
        assert len(answer["error"]) < 200
    assert queued(receiver) == 0


def test_a_well_formed_event_is_accepted_so_the_refusals_above_are_not_everything(receiver):
    forget(receiver)
    swap = [(k, receiver.keys["books_secret"] if v == SECRET else v) for k, v in BOOKS]
    status, answer, _ = exchange(receiver.url, "POST", NOTIFY, JSON,
                                 crm().replace(TOKEN.encode(),
                                               receiver.keys["crm_token"].encode()))
    assert (status, answer) == (200, {"accepted": 1})
    status, answer, _ = exchange(receiver.url, "POST", HOOK, swap, books())
    assert (status, answer) == (200, {"accepted": 1})
    # A byte-order mark and a charset of utf-8 are fine, and so is nesting up to the limit.
    status, _, _ = exchange(receiver.url, "POST", NOTIFY,
                            [("Content-Type", "application/json; charset=UTF-8")],
                            b"\xef\xbb\xbf" + crm(x=json.loads(nested(MAX_DEPTH - 1))).replace(
                                TOKEN.encode(), receiver.keys["crm_token"].encode()))
    assert status == 200
    deals, transactions = receiver.recorded
    wait_for(lambda: deals.batches and transactions.batches)
    assert deals.batches == [[DEAL]]
    assert transactions.batches == [[f"{PRIMARY}|books|invoices|460000000099001|"
                                     "2026-11-28T06:00:02+0000"]]
    forget(receiver)


def test_a_body_streamed_past_the_limit_is_refused_before_it_ends(receiver):
    forget(receiver)
    body = b'{"token": "' + b"x" * (20 * 2**20) + b'"}'  # 20 MB, chunked: no size declared
    status, answer, _ = exchange(receiver.url, "POST", NOTIFY, JSON, body, chunked=True,
                                 send_at_most=MAX_BODY_BYTES + 200_000)
    assert status == 413 and f"larger than {MAX_BODY_BYTES} bytes" in answer["error"]
    # The same with an honest Content-Length just over the limit.
    status, answer, _ = exchange(receiver.url, "POST", NOTIFY, JSON, b" " * (MAX_BODY_BYTES + 1),
                                 send_at_most=0)
    assert status == 413
    assert queued(receiver) == 0


def test_the_nesting_check_counts_brackets_outside_strings_only():
    assert too_deep("[" * 33 + "]" * 33) and not too_deep("[" * 32 + "]" * 32)
    assert not too_deep('["' + "[" * 100 + '"]')
    assert not too_deep('["\\"' + "[" * 100 + '"]')  # an escaped quote does not end it
    assert too_deep('["\\\\"' + ",[" * 40 + "]" * 41)  # an escaped backslash does


# --------------------------------------------------------------------- memory after a burst
CHILD = """
import os, sys, threading
from crmbooks.store import Store
from crmbooks.app.receiver.server import Receiver
store = Store.open(org_id="20099001")
store.save_connection(books_org_id="20099001")
receiver = Receiver(watch=False, handler=lambda ids: None,
                    transactions_handler=lambda keys: None).start()
print(receiver.url, flush=True)  # the token stays in its state file, never printed
sys.stdin.read()
receiver.stop()
"""


def test_memory_returns_to_its_baseline_after_a_burst_of_large_bodies(tmp_path):
    env = {**os.environ, "CRMBOOKS_HOME": str(tmp_path),
           "CRMBOOKS_DATABASE_URL": f"sqlite:///{tmp_path / 'crmbooks.db'}",
           "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = child.stdout.readline().strip()
        token = load_secrets(tmp_path / "receiver.json")["crm_token"]
        almost = b'{"token": "wrong", "pad": "' + b"y" * (MAX_BODY_BYTES - 100) + b'"}'
        events = json.dumps({"module": "Deals", "ids": [DEAL], "token": token}).encode()
        for _ in range(20):  # warm up: every path once, so the baseline has its imports
            exchange(url, "POST", NOTIFY, JSON, almost)
            exchange(url, "POST", NOTIFY, JSON, events)
        baseline = rss_mb(child.pid)
        peak = [baseline]

        def burst(round_: int) -> None:
            for i in range(25):
                kind = (round_ + i) % 3
                if kind == 0:  # just under the limit: read and parsed, then refused (403)
                    assert exchange(url, "POST", NOTIFY, JSON, almost)[0] == 403
                elif kind == 1:  # 20 MB declared
                    assert exchange(url, "POST", NOTIFY, JSON, b"", send_at_most=0,
                                    declared_length=20 * 2**20)[0] == 413
                else:  # 20 MB streamed
                    assert exchange(url, "POST", NOTIFY, JSON, b"z" * (MAX_BODY_BYTES * 2),
                                    chunked=True, send_at_most=MAX_BODY_BYTES + 70_000
                                    )[0] == 413
                peak.append(rss_mb(child.pid))

        threads = [threading.Thread(target=burst, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        after = rss_mb(child.pid)
        print(f"receiver RSS: baseline {baseline:.1f} MB, peak {max(peak):.1f} MB, "
              f"after 200 requests of 1-20 MB {after:.1f} MB")
        assert after - baseline < 20, (baseline, max(peak), after)
    finally:
        child.stdin.close()
        child.wait(timeout=30)
