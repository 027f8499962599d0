"""`BooksClient`: Zoho Books v3 for one organization, built on `ZohoHttp`.

The Books facts relied on here are in docs/zoho-api-notes.md, the sections headed "Books …".
Every call carries `organization_id` ("Books conventions") and is paced by the
organization's shared limiter (pacing.py). Lists are paged by `page_context.has_more_page`
at 200 per page, the maximum ("Books pagination"). Books writes one record per call; contact
persons travel inline in `contact_persons[]` of their contact ("Books contacts and contact
persons"), which saves a call per person.

Exactly-once creates use `upsert_by_custom_field`: `PUT /{resource}` with
`X-Unique-Identifier-Key/Value` and `X-Upsert: true` finds the record by a unique custom field
(e.g. the CRM id) or creates it, so a replay after a dropped answer updates instead of
duplicating. A plain `create` is a POST and is not replayed after an ambiguous failure.

JSON numbers are parsed as `Decimal` (errors.parse_json) and written back exactly
(http.dumps): amounts never pass through float.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from crmbooks.connectors._base import build_http
from crmbooks.connectors.auth import TokenShare
from crmbooks.connectors.config import ZohoConfig
from crmbooks.connectors.errors import FatalError, RecordError
from crmbooks.connectors.http import CallCounter, Reply
from crmbooks.connectors.pacing import Pacer, shared_pacer
from crmbooks.connectors.results import WriteResult
from mappings.schema import books_resource_facts

API = "/books/v3"
MAX_PAGE = 200  # Books' largest per_page
# resource → (envelope key of one record, its id field). The transaction resources are the
# document types of mappings/transactions.yaml, which declare the same facts of theirs.
RESOURCES: dict[str, tuple[str, str]] = {
    "contacts": ("contact", "contact_id"),
    "items": ("item", "item_id"),
}
# Contacts can only be sorted by last_modified_time; items have neither a filter nor a sort
# by it (full scan). Every transaction list takes a `last_modified_time` filter ("modified
# after").
SORTED_SCAN = {"contacts"}


def books_time(moment: datetime) -> str:
    """Books' timestamp form, 2013-11-18T02:02:51+0000 (no colon in the offset)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware (UTC) datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S%z")


def parse_books_time(raw: str) -> datetime:
    """Parse '2013-11-18T02:02:51-0800' (or with a colon offset) into an aware datetime."""
    moment = datetime.strptime(raw.strip(), "%Y-%m-%dT%H:%M:%S%z")
    return moment.astimezone(UTC)


class BooksClient:
    """Zoho Books v3 for `config.books_org_id`; tests inject `client=httpx.Client(...)`."""

    def __init__(
        self,
        config: ZohoConfig,
        client: httpx.Client | None = None,
        *,
        org_id: str | None = None,
        calls: CallCounter | None = None,
        pacer: Pacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        token_share: TokenShare | None = None,
    ):
        self.config = config
        self.org_id = org_id or config.books_org_id
        pacer = pacer or shared_pacer(
            ("books", config.books_url, self.org_id), config.books_requests_per_minute,
            config.books_max_concurrency, config.books_daily_limit)
        self.http = build_http("books", config, config.books_url, client, pacer, calls, sleep,
                               token_share)
        self._owns_client = client is None

    @property
    def calls(self) -> CallCounter:
        """Requests made so far, per endpoint."""
        return self.http.counter

    def __repr__(self) -> str:
        return f"BooksClient({self.config.books_url!r}, org_id={self.org_id!r})"

    def close(self) -> None:
        """Close the httpx client if this object created it."""
        if self._owns_client:
            self.http.client.close()

    def __enter__(self) -> BooksClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- organization ------------------------------------------------------------------------

    def organizations(self) -> list[dict]:
        """Organizations the grant can see (the only call without organization_id)."""
        return (self.http.request("GET", f"{API}/organizations").body or {}).get(
            "organizations", [])

    def organization(self) -> dict:
        """This organization's settings (name, currency_code, time_zone, …)."""
        body = self._call("GET", f"{API}/organizations/{{org}}", path={"org": self._org()})
        return body.get("organization") or {}

    def currencies(self) -> list[dict]:
        """Currencies enabled in this organization."""
        return self._call("GET", f"{API}/settings/currencies").get("currencies", [])

    # -- reads -------------------------------------------------------------------------------

    def iter_pages(self, resource: str, params: Mapping[str, Any] | None = None, *,
                   per_page: int = MAX_PAGE) -> Iterator[list[dict]]:
        """Pages of a list endpoint until `page_context.has_more_page` is false."""
        page = 1
        while True:
            body = self._call("GET", f"{API}/{{resource}}", path={"resource": resource},
                              params={**(params or {}), "page": page, "per_page": per_page})
            rows = body.get(resource) or []
            if rows:
                yield rows
            if not rows or not (body.get("page_context") or {}).get("has_more_page"):
                return
            page += 1

    def iter_modified(self, resource: str, since: datetime | None,
                      params: Mapping[str, Any] | None = None) -> Iterator[list[dict]]:
        """Pages of records modified at or after `since` (all records when None).

        Transactions use the `last_modified_time` filter; contacts a scan sorted by
        last_modified_time descending that stops at the first older row; items, which have
        neither, a full scan ("Books incremental reads"). Whether the boundary is inclusive is
        unverified: callers de-duplicate the boundary by id. `params` are extra list filters,
        e.g.
        {"contact_type": "vendor"}: without it a vendors scan pages through every customer
        modified since the cursor too.
        """
        modified_filter = books_resource_facts(resource) is not None
        if since is None or not (modified_filter or resource in SORTED_SCAN):
            yield from self.iter_pages(resource, params)
        elif modified_filter:
            yield from self.iter_pages(resource, {**(params or {}),
                                                  "last_modified_time": books_time(since)})
        else:
            yield from self._sorted_scan(resource, since, params)

    def _sorted_scan(self, resource: str, since: datetime,
                     params: Mapping[str, Any] | None = None) -> Iterator[list[dict]]:
        query = {**(params or {}), "sort_column": "last_modified_time", "sort_order": "D"}
        for rows in self.iter_pages(resource, query):
            fresh = [r for r in rows if _modified(r) >= since]
            if fresh:
                yield fresh
            if len(fresh) < len(rows):
                return  # the rest is older than the cursor: stop paying for pages

    def get(self, resource: str, record_id: str) -> dict | None:
        """One record in full detail, or None when it does not exist (code 1002)."""
        key, _ = _resource(resource)
        try:
            body = self._call("GET", f"{API}/{{resource}}/{{id}}",
                              path={"resource": resource, "id": record_id})
        except RecordError as exc:
            if exc.status == 404 or exc.code == 1002:
                return None
            raise
        return body.get(key)

    # -- writes ------------------------------------------------------------------------------

    def create(self, resource: str, body: Mapping[str, Any],
               params: Mapping[str, Any] | None = None) -> WriteResult:
        """Create one record (contacts may carry `contact_persons` inline). Not idempotent:
        prefer `upsert_by_custom_field` where the record can carry a unique key."""
        return self._write("POST", f"{API}/{{resource}}", resource, None, body, params,
                           "insert", idempotent=False)

    def update(self, resource: str, record_id: str, body: Mapping[str, Any]) -> WriteResult:
        """Update one record. For contacts, `contact_persons` listed replace the existing
        ones: a person left out is removed."""
        return self._write("PUT", f"{API}/{{resource}}/{{id}}", resource, record_id, body,
                           None, "update")

    def delete(self, resource: str, record_id: str) -> WriteResult:
        """Delete one record."""
        return self._write("DELETE", f"{API}/{{resource}}/{{id}}", resource, record_id, None,
                           None, "delete")

    def upsert_by_custom_field(self, resource: str, key: str, value: str,
                               body: Mapping[str, Any], *, create: bool = True) -> WriteResult:
        """Update the record whose unique custom field `key` (e.g. 'cf_crm_id') equals
        `value`, or create it when `create` (X-Upsert). Idempotent, so retried safely."""
        headers = {"X-Unique-Identifier-Key": key, "X-Unique-Identifier-Value": str(value)}
        if create:
            headers["X-Upsert"] = "true"
        return self._write("PUT", f"{API}/{{resource}}", resource, None, body, None, None,
                           headers=headers)

    def mark_active(self, resource: str, record_id: str, active: bool) -> WriteResult:
        """Mark a contact or item active or inactive (`POST /{resource}/{id}/active|inactive`,
        "Books items"): Books refuses `status` in their body. Safe to replay (it sets a
        state)."""
        if resource not in ("contacts", "items"):
            raise ValueError(f"{resource} has no active/inactive calls; contacts or items")
        action = "active" if active else "inactive"
        return self._write("POST", f"{API}/{{resource}}/{{id}}/{action}", resource, record_id,
                           None, None, action, idempotent=True)

    # -- contact persons (their own endpoints, besides travelling inline) --------------------

    def contact_persons(self, contact_id: str) -> list[dict]:
        """The contact persons of one contact."""
        body = self._call("GET", f"{API}/contacts/{{id}}/contactpersons", path={"id": contact_id})
        return body.get("contact_persons") or []

    def create_contact_person(self, contact_id: str, body: Mapping[str, Any]) -> WriteResult:
        """Add a person to an existing contact. Not idempotent: callers look the person up
        first (by email or name) so that a replay after a lost answer adds nobody twice."""
        return self._person_write("POST", f"{API}/contacts/contactpersons", None,
                                  {**body, "contact_id": contact_id}, "insert")

    def update_contact_person(self, person_id: str, contact_id: str,
                              body: Mapping[str, Any]) -> WriteResult:
        """Update one contact person."""
        return self._person_write("PUT", f"{API}/contacts/contactpersons/{{id}}", person_id,
                                  {**body, "contact_id": contact_id}, "update")

    def _person_write(self, method: str, template: str, person_id: str | None,
                      body: Mapping[str, Any], action: str) -> WriteResult:
        try:
            answer = self._call(method, template, path={"id": person_id or ""}, body=body,
                                idempotent=method == "PUT")
        except RecordError as exc:
            message = exc.body.get("message") if isinstance(exc.body, dict) else str(exc)
            return WriteResult(0, False, id=person_id, code=exc.code, message=str(message),
                               details=exc.body if isinstance(exc.body, dict) else {})
        person = answer.get("contact_person") or {}
        found = person.get("contact_person_id") or person_id
        return WriteResult(0, True, id=None if found is None else str(found), action=action,
                           code=answer.get("code", 0), message=str(answer.get("message", "")),
                           record=person or None)

    def id_of(self, resource: str, record: Mapping[str, Any]) -> str:
        """The id of a record of `resource` (contact_id, item_id, estimate_id …)."""
        return str(record[_resource(resource)[1]])

    def mark(self, resource: str, record_id: str, status: str) -> WriteResult:
        """Set a transaction's status through Books' status action (POST
        /{resource}/{id}/status/{status}): the only way Books changes it."""
        facts = books_resource_facts(resource)
        actions = facts.status_actions if facts else ()
        if status not in actions:
            raise ValueError(f"{resource} status must be one of {sorted(actions)}")
        # Replaying a status action is harmless for the data, so it is retried; but when the
        # first attempt landed and only its answer was lost, Zoho refuses the replay ("already
        # void"). A refusal is therefore checked against the record before it is reported.
        result = self._write("POST", f"{API}/{{resource}}/{{id}}/status/{status}", resource,
                             record_id, None, None, status, idempotent=True)
        if result.ok or not _reached(self.get(resource, record_id), status):
            return result
        return WriteResult(0, True, id=record_id, action=status, code=0,
                           message=f"already {status}")

    def _write(self, method: str, template: str, resource: str, record_id: str | None,
               body: Mapping[str, Any] | None, params: Mapping[str, Any] | None,
               action: str | None, *, idempotent: bool | None = None,
               headers: Mapping[str, str] | None = None) -> WriteResult:
        """One write; a record-level rejection becomes WriteResult(ok=False, code, message)."""
        key, id_field = _resource(resource)
        path = {"resource": resource, "id": record_id or ""}
        try:
            reply = self._reply(method, template, path=path, params=params, body=body,
                                headers=headers, idempotent=idempotent)
        except RecordError as exc:
            message = exc.body.get("message") if isinstance(exc.body, dict) else str(exc)
            return WriteResult(0, False, id=record_id, code=exc.code, message=str(message),
                               details=exc.body if isinstance(exc.body, dict) else {})
        answer = reply.body if isinstance(reply.body, dict) else {}
        record = answer.get(key) if isinstance(answer.get(key), dict) else None
        found = (record or {}).get(id_field) or record_id
        if action is None:  # upsert: Zoho answers 201 when it created, 200 when it updated
            action = "insert" if reply.status == 201 else "update"
        return WriteResult(0, True, id=None if found is None else str(found), action=action,
                           code=answer.get("code", 0), message=str(answer.get("message", "")),
                           record=record)

    # -- plumbing ----------------------------------------------------------------------------

    def _org(self) -> str:
        if not self.org_id:
            raise FatalError("books_org_id is not set: pick one of the ids listed by "
                             "BooksClient.organizations() (or `crmbooks connect`)")
        return self.org_id

    def _reply(self, method: str, template: str, *, path: Mapping[str, str] | None = None,
               params: Mapping[str, Any] | None = None, body: Any = None,
               headers: Mapping[str, str] | None = None,
               idempotent: bool | None = None) -> Reply:
        query = {**(params or {}), "organization_id": self._org()}
        return self.http.request(method, template, path=path, params=query, body=body,
                                 headers=headers, idempotent=idempotent)

    def _call(self, method: str, template: str, **kwargs) -> dict:
        reply = self._reply(method, template, **kwargs)
        return reply.body if isinstance(reply.body, dict) else {}


def _resource(resource: str) -> tuple[str, str]:
    if resource in RESOURCES:
        return RESOURCES[resource]
    facts = books_resource_facts(resource)
    if facts is None:
        raise ValueError(f"unknown Books resource '{resource}'; use one of "
                         f"{sorted(RESOURCES)} or a document type of the mappings")
    return facts.record_key, facts.id_field


def _reached(record: dict | None, status: str) -> bool:
    """Whether a record already is in (or past, for 'sent') the status an action sets."""
    if record is None:
        return False
    current = str(record.get("status", ""))
    if status == "sent":
        return current not in ("", "draft")
    return current == status


def _modified(row: dict) -> datetime:
    raw = row.get("last_modified_time")
    if not raw:
        # Without a timestamp the row cannot be placed before the cursor: keep it.
        return datetime.max.replace(tzinfo=UTC)
    return parse_books_time(str(raw))
