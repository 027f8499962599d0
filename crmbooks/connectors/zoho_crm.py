"""`CrmClient`: Zoho CRM v8 reads, writes and metadata, built on `ZohoHttp`.

The CRM facts relied on here are in docs/zoho-api-notes.md, the sections headed "CRM …".

Reads yield *pages* (lists of records, ≤200), never single records, so a task can turn each
page into a DataFrame. Writes return one `WriteResult` per input record, in input order:
record-level rejections are data, not exceptions.

Fields beyond CRM's 50-per-request cap ("CRM fields and pagination"): the first 49 fields
(+ id) are paged normally and the rest are fetched for exactly those ids (`ids=`, 100 per
request) and merged by id. Paging several field groups in lockstep would be cheaper by a
request or two per page
but silently mis-merges when a record moves between pages during the read (sort by
Modified_Time while someone edits); fetching by id cannot.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx

from crmbooks.connectors._base import build_http, chunks, iso
from crmbooks.connectors.auth import TokenShare
from crmbooks.connectors.config import ZohoConfig
from crmbooks.connectors.errors import FatalError, RecordError, ZohoError
from crmbooks.connectors.http import CallCounter, Reply
from crmbooks.connectors.pacing import Pacer, shared_pacer
from crmbooks.connectors.results import WriteResult

API = "/crm/v8"
MAX_FIELDS = 50  # more: LIMIT_EXCEEDED {"limit":50,"param_name":"fields"}
MAX_WRITE = 100  # records per create/update/upsert/delete call ("CRM writes")
MAX_PAGE = 200  # per_page is 1–200
DISCRETE_LIMIT = 2000  # records reachable by page/per_page; beyond this, page_token
COQL_PAGE = 2000  # rows per COQL call at most; cheapest per row (credits grow slower)
COQL_TOTAL = 100_000  # COQL rows reachable by paging ("CRM COQL")
CRITERIA_OPS = {"equals", "not_equal", "starts_with", "in", "greater_than", "greater_equal",
                "less_than", "less_equal", "between"}
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_$.]+$")


# -- search criteria -------------------------------------------------------------------------

def criteria_escape(value: Any) -> str:
    """A value for search criteria: `(`, `)`, `,` and `\\` escaped with a backslash, as CRM
    search requires ("CRM search").

    The backslash goes first so the escapes added for the others are not escaped twice;
    httpx URL-encodes the result as a query parameter.
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = iso(value)
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, Decimal):
        text = format(value, "f")
    else:
        text = str(value)
    return re.sub(r"([\\(),])", r"\\\1", text)


def criterion(field: str, op: str, value: Any) -> str:
    """One condition, e.g. criterion('Account_Name', 'equals', 'Acme (UK), Ltd')."""
    if not _FIELD_NAME.match(field):
        raise ValueError(f"'{field}' is not a CRM field API name")
    if op not in CRITERIA_OPS:
        raise ValueError(f"unknown criteria operator '{op}'; use one of {sorted(CRITERIA_OPS)}")
    if op in ("in", "between"):
        values = list(value)
        if op == "between" and len(values) != 2:
            raise ValueError("'between' takes exactly two values")
        if op == "in" and not 1 <= len(values) <= 100:  # CRM search: `in` takes ≤ 100 values
            raise ValueError("'in' takes 1 to 100 values")
        text = ",".join(criteria_escape(v) for v in values)
    else:
        text = criteria_escape(value)
    return f"({field}:{op}:{text})"


def all_of(*conditions: str) -> str:
    """Conditions joined with `and`."""
    return _join("and", conditions)


def any_of(*conditions: str) -> str:
    """Conditions joined with `or`."""
    return _join("or", conditions)


def _join(word: str, conditions: Sequence[str]) -> str:
    if not conditions:
        raise ValueError("at least one condition is needed")
    if len(conditions) == 1:
        return conditions[0]
    return "(" + f" {word} ".join(conditions) + ")"


# -- the client ------------------------------------------------------------------------------

class CrmClient:
    """Zoho CRM v8. Build with `CrmClient(config)`; tests inject `client=httpx.Client(...)`."""

    def __init__(
        self,
        config: ZohoConfig,
        client: httpx.Client | None = None,
        *,
        calls: CallCounter | None = None,
        pacer: Pacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        token_share: TokenShare | None = None,
    ):
        self.config = config
        pacer = pacer or shared_pacer(("crm", config.crm_url, config.client_id),
                                      config.crm_requests_per_minute, config.crm_max_concurrency)
        self.http = build_http("crm", config, config.crm_url, client, pacer, calls, sleep,
                               token_share)
        self._owns_client = client is None
        self.max_fields = MAX_FIELDS  # lowered only by tests, to exercise the merge path

    @property
    def calls(self) -> CallCounter:
        """Requests made so far, per endpoint (shared with Books when a counter is passed)."""
        return self.http.counter

    def __repr__(self) -> str:
        return f"CrmClient({self.config.crm_url!r})"

    def close(self) -> None:
        """Close the httpx client if this object created it."""
        if self._owns_client:
            self.http.client.close()

    def __enter__(self) -> CrmClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reads -------------------------------------------------------------------------------

    def iter_records(
        self,
        module: str,
        fields: Sequence[str],
        *,
        cvid: str | None = None,
        modified_since: datetime | None = None,
        sort_by: str = "id",
        sort_order: str = "asc",
        per_page: int = MAX_PAGE,
    ) -> Iterator[list[dict]]:
        """Pages of `module` records with `fields` (any number; >50 is split and merged).

        `modified_since` sends If-Modified-Since (records modified at or after it, "CRM
        incremental reads"); 304/204 mean nothing new and yield nothing. Page/per_page up to
        record 2000, then page_token ("CRM fields and pagination").
        """
        first, rest = split_fields(fields, self.max_fields)
        params = {"fields": ",".join(first), "per_page": per_page, "cvid": cvid,
                  "sort_by": sort_by, "sort_order": sort_order}
        headers = {"If-Modified-Since": iso(modified_since)} if modified_since else None
        pages = self._paginate(f"{API}/{{module}}", {"module": module}, params, headers)
        for page in pages:
            yield self._complete(module, page, rest) if rest else page

    def get_record(self, module: str, record_id: str, fields: Sequence[str]) -> dict | None:
        """One record by id, or None when it does not exist."""
        first, rest = split_fields(fields, self.max_fields)
        try:
            reply = self.http.request("GET", f"{API}/{{module}}/{{id}}",
                                      path={"module": module, "id": record_id},
                                      params={"fields": ",".join(first)})
        except RecordError as exc:
            if exc.code == "INVALID_DATA":  # CRM answers an unknown id with 400 INVALID_DATA
                return None
            raise
        data = (reply.body or {}).get("data") or []
        if not data:
            return None
        return self._complete(module, data, rest)[0] if rest else data[0]

    def related(self, module: str, record_id: str, related_list: str,
                fields: Sequence[str]) -> list[dict]:
        """The first page (up to 200) of a record's related list (GET
        /{module}/{id}/{related list}): the quotes of a deal or an account, say, as a person
        sees them on its page. A list with nothing in it is []."""
        reply = self.http.request("GET", f"{API}/{{module}}/{{id}}/{{related}}",
                                  path={"module": module, "id": record_id,
                                        "related": related_list},
                                  params={"fields": ",".join(fields), "per_page": 200})
        return [] if reply.status == 204 else list((reply.body or {}).get("data") or [])

    def records_by_ids(self, module: str, ids: Sequence[str], fields: Sequence[str]
                       ) -> list[dict]:
        """Up to 100 records by id with `fields`, in one call (ids that do not exist are left
        out)."""
        if len(ids) > MAX_WRITE:
            raise ValueError(f"at most {MAX_WRITE} ids per call, got {len(ids)}")
        if not ids:
            return []
        reply = self.http.request("GET", f"{API}/{{module}}", path={"module": module},
                                  params={"ids": ",".join(ids), "fields": ",".join(fields)})
        return (reply.body or {}).get("data") or []

    def search(
        self,
        module: str,
        *,
        criteria: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        word: str | None = None,
        fields: Sequence[str] | None = None,
        per_page: int = MAX_PAGE,
    ) -> Iterator[list[dict]]:
        """Pages of search results; exactly one of criteria/email/phone/word ("CRM search").

        Build `criteria` with `criterion`/`all_of`/`any_of` (values escaped). Search sees
        recent writes late (index lag): use `coql` for read-after-write. At most 2000 hits.
        """
        given = {k: v for k, v in (("criteria", criteria), ("email", email), ("phone", phone),
                                   ("word", word)) if v is not None}
        if len(given) != 1:
            raise ValueError("search needs exactly one of criteria, email, phone or word")
        params = {**given, "per_page": per_page}
        if fields:
            first, rest = split_fields(fields, self.max_fields)
            if rest:
                raise ValueError(f"search returns at most {self.max_fields} fields; fetch the "
                                 "others with iter_records or get_record")
            params["fields"] = ",".join(first)
        yield from self._paginate(f"{API}/{{module}}/search", {"module": module}, params,
                                  None, mode="cap")

    def coql(self, query: str, *, page_size: int = COQL_PAGE) -> Iterator[list[dict]]:
        """Pages of a COQL select ("CRM COQL"). Without a LIMIT clause the query is paged with
        `limit offset, page_size` up to 100,000 rows; with one it runs once as written."""
        query = query.strip().rstrip(";")
        if re.search(r"\blimit\b", query, re.IGNORECASE):
            reply = self._coql(query)
            data = (reply.body or {}).get("data") or []
            if data:
                yield data
            return
        offset = 0
        while True:
            reply = self._coql(f"{query} limit {offset}, {page_size}")
            data = (reply.body or {}).get("data") or []
            if data:
                yield data
            if not data or not ((reply.body or {}).get("info") or {}).get("more_records"):
                return
            offset += len(data)
            if offset >= COQL_TOTAL:
                raise FatalError(f"COQL pages at most {COQL_TOTAL} rows; narrow the "
                                 "where clause, e.g. by Modified_Time ranges",
                                 endpoint=f"POST {API}/coql")

    def _coql(self, select_query: str) -> Reply:
        # A read sent as POST: replaying it is harmless.
        return self.http.request("POST", f"{API}/coql", body={"select_query": select_query},
                                 idempotent=True)

    def deleted(self, module: str, since: datetime | None = None, *, kind: str = "all",
                per_page: int = MAX_PAGE) -> Iterator[list[dict]]:
        """Pages of deleted records (`type` all|recycle|permanent), If-Modified-Since `since`."""
        headers = {"If-Modified-Since": iso(since)} if since else None
        yield from self._paginate(f"{API}/{{module}}/deleted", {"module": module},
                                  {"type": kind, "per_page": per_page}, headers, mode="pages")

    def _paginate(self, template: str, path: dict, params: dict, headers: dict | None,
                  mode: str = "token") -> Iterator[list[dict]]:
        """Page through a list endpoint. mode: 'token' switches to page_token past 2000
        records, 'cap' stops with an error there (search), 'pages' just counts on."""
        page, token, per_page = 1, None, int(params.get("per_page") or MAX_PAGE)
        while True:
            query = {**params, **({"page_token": token} if token else {"page": page})}
            reply = self.http.request("GET", template, path=path, params=query, headers=headers)
            body = reply.body if isinstance(reply.body, dict) else {}
            if body.get("data"):
                yield body["data"]
            info = body.get("info") or {}
            if reply.status in (204, 304) or not info.get("more_records"):
                return
            page += 1
            if token or (mode != "pages" and page * per_page > DISCRETE_LIMIT):
                token = self._next_token(info, template, mode)

    @staticmethod
    def _next_token(info: dict, template: str, mode: str) -> str:
        where = f"GET {template}"
        if mode == "cap":
            raise FatalError(f"{where}: more than {DISCRETE_LIMIT} matches, the most a CRM "
                             "search returns; narrow the criteria or use COQL",
                             endpoint=where)
        token = info.get("next_page_token")
        if not token:
            raise FatalError(f"{where}: more records exist past {DISCRETE_LIMIT} but Zoho sent "
                             "no next_page_token", endpoint=where)
        return str(token)

    def _complete(self, module: str, page: list[dict], rest: list[list[str]]) -> list[dict]:
        """Fetch the extra field groups for this page's ids and merge them by id."""
        merged = {str(r["id"]): dict(r) for r in page}
        for group in rest:
            for _, ids in chunks(list(merged), MAX_WRITE):
                reply = self.http.request("GET", f"{API}/{{module}}", path={"module": module},
                                          params={"ids": ",".join(ids),
                                                  "fields": ",".join(group)})
                for extra in (reply.body or {}).get("data") or []:
                    merged.get(str(extra.get("id")), {}).update(extra)
        return [merged[str(r["id"])] for r in page]

    # -- writes ------------------------------------------------------------------------------

    def create(self, module: str, records: Sequence[dict], *,
               trigger: Sequence[str] | None = None) -> list[WriteResult]:
        """Insert records, 100 per call. Not idempotent: a dropped answer raises
        RetriableError(maybe_applied=True) rather than risk a duplicate; prefer `upsert`."""
        return self._write("POST", f"{API}/{{module}}", module, records, "insert",
                           {"trigger": trigger}, idempotent=False)

    def update(self, module: str, records: Sequence[dict], *,
               trigger: Sequence[str] | None = None) -> list[WriteResult]:
        """Update records (each carries its `id`), 100 per call."""
        missing = [i for i, r in enumerate(records) if not r.get("id")]
        if missing:
            raise ValueError(f"update needs an 'id' in every record; missing at {missing[:10]}")
        return self._write("PUT", f"{API}/{{module}}", module, records, "update",
                           {"trigger": trigger}, idempotent=True)

    def upsert(self, module: str, records: Sequence[dict], *,
               duplicate_check_fields: Sequence[str] | None = None,
               trigger: Sequence[str] | None = None) -> list[WriteResult]:
        """Insert or update by `duplicate_check_fields` (ordered; default: the module's
        system duplicate-check fields, then its unique ones; "CRM writes"), 100 per call.
        Idempotent, so always retried."""
        extra = {"trigger": trigger, "duplicate_check_fields": duplicate_check_fields}
        return self._write("POST", f"{API}/{{module}}/upsert", module, records, "insert",
                           extra, idempotent=True)

    def delete(self, module: str, ids: Sequence[str]) -> list[WriteResult]:
        """Delete by id (to the recycle bin), 100 per call."""
        results: list[WriteResult] = []
        for start, part in chunks(list(ids), MAX_WRITE):
            items = self._send_write("DELETE", f"{API}/{{module}}", module, None,
                                     {"ids": ",".join(part)}, len(part), True)
            results += [_write_result(start + i, item, "delete") for i, item in enumerate(items)]
        return results

    def _write(self, method: str, template: str, module: str, records: Sequence[dict],
               action: str, extra: dict, *, idempotent: bool) -> list[WriteResult]:
        results: list[WriteResult] = []
        options = {k: list(v) for k, v in extra.items() if v is not None}
        for start, part in chunks(list(records), MAX_WRITE):
            items = self._send_write(method, template, module, {"data": list(part), **options},
                                     None, len(part), idempotent)
            results += [_write_result(start + i, item, action) for i, item in enumerate(items)]
        return results

    def _send_write(self, method, template, module, body, params, size, idempotent) -> list:
        """The per-record items of one write call (201/200/207, or 400 with data[])."""
        try:
            reply = self.http.request(method, template, path={"module": module}, body=body,
                                      params=params, idempotent=idempotent)
            items = (reply.body or {}).get("data")
        except RecordError as exc:
            items = exc.body.get("data") if isinstance(exc.body, dict) else None
            if not isinstance(items, list):
                # One error for the whole call (e.g. top-level INVALID_DATA): every record
                # of the chunk carries it, so each lands in the failures table.
                items = [_error_item(exc)] * size
        if not isinstance(items, list) or len(items) != size:
            raise ZohoError(f"{method} {template}: Zoho answered {size} records with "
                            f"{len(items or [])} results; nothing can be matched safely",
                            endpoint=f"{method} {template}")
        return items

    # -- metadata ----------------------------------------------------------------------------

    def modules(self) -> list[dict]:
        """All modules (`/settings/modules`)."""
        return self._get(f"{API}/settings/modules").get("modules", [])

    def fields(self, module: str) -> list[dict]:
        """Field metadata with `pick_list_values` (`/settings/fields?module=`)."""
        return self._get(f"{API}/settings/fields", {"module": module}).get("fields", [])

    def deal_stages(self) -> list[tuple[str, int | None, str | None]]:
        """(stage, probability, forecast_type) for every Deals Stage value, in order
        (each organization sets its own, so it is read, never hard-coded; "CRM deal stages")."""
        stage = next((f for f in self.fields("Deals") if f.get("api_name") == "Stage"), None)
        if stage is None:
            raise FatalError("the Deals module has no Stage field; check the CRM edition",
                             endpoint=f"GET {API}/settings/fields")
        # "-None-" is the pick list's empty placeholder, not a stage.
        values = sorted((v for v in stage.get("pick_list_values") or []
                         if (v.get("actual_value") or v.get("display_value")) != "-None-"),
                        key=lambda v: v.get("sequence_number") or 0)
        return [(v.get("actual_value") or v.get("display_value"), _int(v.get("probability")),
                 v.get("forecast_type") or v.get("deal_category")) for v in values]

    def custom_views(self, module: str) -> list[dict]:
        """Custom views of a module (their ids are the `cvid` of reads)."""
        return self._collect(f"{API}/settings/custom_views", "custom_views", {"module": module})

    def find_view(self, module: str, name_or_id: str) -> dict | None:
        """The view whose id, or name/display value (case-insensitive), is `name_or_id`."""
        wanted = str(name_or_id).strip().lower()
        for view in self.custom_views(module):
            names = {str(view.get(k, "")).lower() for k in ("id", "name", "display_value")}
            if wanted in names:
                return view
        return None

    def users(self, kind: str = "ActiveUsers") -> list[dict]:
        """Users of `type` AllUsers|ActiveUsers|CurrentUser|…"""
        return self._collect(f"{API}/users", "users", {"type": kind})

    def current_user(self) -> dict:
        """The user the OAuth grant belongs to."""
        users = self.users("CurrentUser")
        if not users:
            raise FatalError("Zoho returned no current user for this grant",
                             endpoint=f"GET {API}/users")
        return users[0]

    def org(self) -> dict:
        """The organization: currency, edition (license), multi-currency status…"""
        orgs = self._get(f"{API}/org").get("org") or [{}]
        return orgs[0]

    def org_summary(self) -> dict:
        """{'name', 'currency' (ISO code), 'edition', 'multi_currency'} from `org()`."""
        org = self.org()
        license_details = org.get("license_details") or {}
        return {"name": org.get("company_name"),
                "currency": org.get("iso_code") or org.get("currency"),
                "edition": license_details.get("paid_type") or org.get("edition"),
                "multi_currency": bool(org.get("mc_status"))}

    def watch(self, channels: Sequence[dict]) -> list[dict]:
        """Enable notification channels (`POST /actions/watch`, body {"watch": [...]}).
        Returns Zoho's per-channel items (status success|error, code, details), as data."""
        return self._watch_call("POST", body={"watch": list(channels)})

    def update_watch(self, channels: Sequence[dict]) -> list[dict]:
        """Change notification channels (`PATCH /actions/watch`); per-channel items."""
        return self._watch_call("PATCH", body={"watch": list(channels)})

    def unwatch(self, channel_ids: Iterable[str]) -> list[dict]:
        """Disable notification channels (`DELETE /actions/watch?channel_ids=`)."""
        ids = ",".join(str(i) for i in channel_ids)
        return self._watch_call("DELETE", params={"channel_ids": ids})

    def watched(self) -> list[dict]:
        """The live notification channels (`GET /actions/watch`)."""
        return self._get(f"{API}/actions/watch").get("watch", [])

    def _watch_call(self, method: str, **kwargs) -> list[dict]:
        # Subscribing the same channel twice just replaces it: safe to replay.
        try:
            reply = self.http.request(method, f"{API}/actions/watch", idempotent=True, **kwargs)
            body = reply.body
        except RecordError as exc:
            body = exc.body
        items = body.get("watch") if isinstance(body, dict) else None
        return items if isinstance(items, list) else []

    def _get(self, template: str, params: dict | None = None) -> dict:
        reply = self.http.request("GET", template, params=params)
        return reply.body if isinstance(reply.body, dict) else {}

    def _collect(self, template: str, key: str, params: dict) -> list[dict]:
        out: list[dict] = []
        page = 1
        while True:
            body = self._get(template, {**params, "page": page, "per_page": MAX_PAGE})
            out += body.get(key) or []
            if not (body.get("info") or {}).get("more_records"):
                return out
            page += 1


def split_fields(fields: Sequence[str],
                 max_fields: int = MAX_FIELDS) -> tuple[list[str], list[list[str]]]:
    """(first group, extra groups): at most 50 names per request, `id` in every group."""
    names = [f.strip() for f in (fields.split(",") if isinstance(fields, str) else fields)]
    names = list(dict.fromkeys(n for n in names if n and n != "id"))
    if not names:
        raise ValueError("name at least one field: CRM v8 requires `fields`")
    bad = [n for n in names if not _FIELD_NAME.match(n)]
    if bad:
        raise ValueError(f"not CRM field API names: {bad}")
    size = max_fields - 1
    groups = [["id", *names[i:i + size]] for i in range(0, len(names), size)]
    return groups[0], groups[1:]


def _write_result(index: int, item: dict, action: str) -> WriteResult:
    details = item.get("details") if isinstance(item.get("details"), dict) else {}
    if item.get("status") == "success":
        return WriteResult(index, True, id=_str(details.get("id")),
                           action=item.get("action") or action, code=item.get("code"),
                           message=str(item.get("message", "")), details=details)
    return WriteResult(index, False, id=_str(details.get("id")), code=item.get("code"),
                       field=details.get("api_name"), message=str(item.get("message", "")),
                       details=details)


def _error_item(exc: ZohoError) -> dict:
    body = exc.body if isinstance(exc.body, dict) else {}
    return {"status": "error", "code": exc.code, "message": body.get("message", str(exc)),
            "details": body.get("details") or {}}


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
