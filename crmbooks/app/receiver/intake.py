"""What the receiver accepts as an event, before anything is looked at: the body (its size,
encoding, content type, JSON nesting) and the type of every field it reads.

Anything else is refused with a 4xx and a one-line reason (:class:`Refused`), never a 500,
and queues nothing:

- a body larger than :data:`MAX_BODY_BYTES` (413): refused by its Content-Length before a
  byte of it is read, and while it streams in otherwise (chunked), so a 20 MB body is never
  held in memory;
- a compressed body or a content type other than JSON or plain text (415), a charset other
  than UTF-8 (415), a body that is not UTF-8, not JSON, empty, or nested deeper than
  :data:`MAX_DEPTH` (400; the nesting is counted by a loop before parsing, so a body nested
  10,000 deep cannot exhaust the parser's recursion);
- a field of the wrong type (400): a token that is not a string, ids that are not a list of
  record ids (digits, as a string or a whole number), a stamp that is not a short string.

Kept apart from the HTTP app so that each rule can be read, and tested, on its own.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

#: The largest body accepted (a CRM notification of 100 ids is about 3 KB).
MAX_BODY_BYTES = 1_000_000
#: The deepest JSON nesting accepted (events are 3 levels deep).
MAX_DEPTH = 32
#: The most record ids one notification may carry.
MAX_IDS = 1000
#: A Zoho record id: digits (19 in practice).
ID_PATTERN = re.compile(r"[0-9]{1,30}")
#: A Books organization id in a URL.
ORG_PATTERN = re.compile(r"[0-9]{1,30}")
#: A record's modified time as Books sends it (2026-11-28T06:00:02+0000).
STAMP_PATTERN = re.compile(r"[0-9T:+\-. Z]{1,40}")
#: Content types an event may come as (Zoho sends application/json).
JSON_TYPES = ("application/json", "text/plain")
_SPECIAL = re.compile(r'["\\\[\]{}]')


class Refused(ValueError):
    """A request the receiver answers with `status` and the one-line `reason`."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason

    def __reduce__(self):
        return type(self), (self.status, self.reason)


def _kind(value: Any) -> str:
    """A JSON value's type in words, for reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


# ------------------------------------------------------------------------------ the body
def check_headers(headers) -> None:
    """Refuse by the headers alone: a declared size over the limit, a compressed body, a
    content type or charset that is not JSON in UTF-8."""
    length = headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise Refused(400, "Content-Length is not a number")
        if int(length) > MAX_BODY_BYTES:
            raise Refused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    encoding = (headers.get("content-encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise Refused(415, "compressed bodies are not accepted: send the JSON uncompressed")
    content_type = headers.get("content-type")
    if not content_type:
        return
    mime, _, params = content_type.partition(";")
    mime = mime.strip().lower()
    if mime not in JSON_TYPES and not (mime.startswith("application/")
                                       and mime.endswith("+json")):
        raise Refused(415, "the content type must be application/json")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and \
                value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise Refused(415, "the charset must be UTF-8")


async def read_limited(chunks: AsyncIterator[bytes], limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, read chunk by chunk; 413 as soon as it grows past `limit` (the rest is never
    read)."""
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"the body is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when the JSON text nests objects/lists deeper than `limit`: one pass over its
    quotes, backslashes and brackets, brackets inside strings not counted (no recursion)."""
    depth, in_string, escaped_at = 0, False, -1
    for match in _SPECIAL.finditer(text):
        at, char = match.start(), match.group()
        if at == escaped_at:
            continue  # the character after a backslash, inside a string
        if in_string:
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """The JSON value of a body: UTF-8 (a byte-order mark allowed), nested at most
    :data:`MAX_DEPTH` deep, no NaN or Infinity; 400 with the reason otherwise."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(400, f"the body is not UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise Refused(400, "the body is empty: a JSON object is expected")
    if too_deep(text):
        raise Refused(400, f"the JSON is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError, too many digits, NaN
        reason = str(exc).splitlines()[0][:120]
        raise Refused(400, f"the body is not valid JSON: {reason}") from None
    except RecursionError:  # pragma: no cover - too_deep refused it first
        raise Refused(400, f"the JSON is nested deeper than {MAX_DEPTH} levels") from None


def json_object(value: Any) -> dict:
    """`value` when it is a JSON object; 400 otherwise."""
    if not isinstance(value, dict):
        raise Refused(400, f"a JSON object is expected, not {_kind(value)}")
    return value


# ------------------------------------------------------------------------------ fields
def record_id(value: Any, what: str = "an id") -> str:
    """A record id as a string: digits, given as a string (spaces around allowed) or a whole
    number; 400 otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Refused(400, f"{what} must be a record id (digits), not {_kind(value)}")
    text = str(value).strip() if isinstance(value, str) else str(value)
    if not ID_PATTERN.fullmatch(text) or (isinstance(value, int) and value <= 0):
        raise Refused(400, f"{what} must be a record id (digits, at most 30)")
    return text


def record_ids(value: Any) -> list[str]:
    """The `ids` of a notification: a non-empty list of record ids, without repeats."""
    if not isinstance(value, list):
        raise Refused(400, f"ids must be a list of record ids, not {_kind(value)}")
    if not value:
        raise Refused(400, "ids is empty")
    if len(value) > MAX_IDS:
        raise Refused(400, f"ids holds more than {MAX_IDS} ids")
    return list(dict.fromkeys(record_id(i, "each of ids") for i in value))


def optional_text(body: dict, field: str, limit: int = 100) -> str | None:
    """A string field that may be missing or null; 400 for another type or a long one."""
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Refused(400, f"{field} must be a string, not {_kind(value)}")
    if len(value) > limit:
        raise Refused(400, f"{field} is longer than {limit} characters")
    return value


def stamp(value: Any) -> str | None:
    """A record's modified time as Books sends it, or None when missing."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not STAMP_PATTERN.fullmatch(value):
        raise Refused(400, "last_modified_time must be a date-time string")
    return value


def token(value: Any) -> str | None:
    """The channel token of a CRM notification (None when missing or empty)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Refused(400, f"token must be a string, not {_kind(value)}")
    return value


def affected_fields(value: Any) -> Any:
    """A notification's `affected_fields`: missing, or a list of {id: [field, …]} objects or
    field names."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(
            isinstance(entry, str) or (isinstance(entry, dict) and all(
                isinstance(fields, list) and all(isinstance(f, str) for f in fields)
                for fields in entry.values()))
            for entry in value):
        raise Refused(400, "affected_fields must be a list of {id: [field names]} objects")
    return value


@dataclass(frozen=True)
class CrmNotification:
    """A CRM notification, its fields checked (the token is checked by the caller)."""

    module: str
    ids: list[str]
    operation: str
    affected_fields: Any


def crm_notification(body: dict) -> CrmNotification:
    """The checked fields of an authentic CRM notification; 400 for a field of a wrong type."""
    module = optional_text(body, "module")
    if not module:
        raise Refused(400, "module is missing")
    operation = optional_text(body, "operation") or "update"
    channel = body.get("channel_id")
    if channel is not None and (isinstance(channel, bool)
                                or not isinstance(channel, int | str)):
        raise Refused(400, f"channel_id must be a string, not {_kind(channel)}")
    return CrmNotification(module, record_ids(body.get("ids")), operation,
                           affected_fields(body.get("affected_fields")))


def org_in_path(org_id: str) -> str:
    """A Books organization id from a URL: digits only, else 404 (said without repeating
    what was sent)."""
    if not ORG_PATTERN.fullmatch(org_id):
        raise Refused(404, "no such Books organization: the URL ends with its id (digits)")
    return org_id
