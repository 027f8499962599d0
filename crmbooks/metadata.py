"""Field metadata of both sides, cached for an hour so a quiet run spends no request on it.

CRM: `GET /settings/fields?module=X`. Books documents no custom-field metadata
endpoint in the v3 OpenAPI files, so its custom fields are read off one record of the resource
(`custom_fields[]` carries api_name, data_type per field): items carry them in the list, contacts
only in the detail, which costs one extra request per hour.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from crmbooks.store.engine import crmbooks_home

TTL_SECONDS = 3600
_lock = threading.Lock()


class ViewNotFound(ValueError):
    """The configured CRM custom view does not exist (any more)."""


def _cache_file(runtime) -> Path:
    return _cache_path(runtime.org_id)


def _cache_path(org_id: str | None) -> Path:
    folder = crmbooks_home() / "cache"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"metadata-{org_id or 'default'}.json"


def last_known(org_id: str | None, key: str) -> object | None:
    """What the cache last held under `key` for a Books organization, however old, or None:
    for showing (`crmbooks status`), never a request."""
    path = _cache_path(org_id)
    with _lock:
        data = json.loads(path.read_text()) if path.exists() else {}
    hit = data.get(key)
    return hit["value"] if hit else None


def cached(runtime, key: str, fetch) -> object:
    """The cached value of `key`, fetched again when older than TTL_SECONDS."""
    path = _cache_file(runtime)
    with _lock:
        data = json.loads(path.read_text()) if path.exists() else {}
        hit = data.get(key)
        if hit and time.time() - hit["at"] < TTL_SECONDS:
            return hit["value"]
    value = fetch()
    with _lock:
        data = json.loads(path.read_text()) if path.exists() else {}
        data[key] = {"at": time.time(), "value": value}
        path.write_text(json.dumps(data, default=str))
    return value


def clear_cache(runtime) -> None:
    """Forget cached metadata (after the operator changed fields or views)."""
    path = _cache_file(runtime)
    if path.exists():
        path.unlink()


def crm_fields_key(module: str) -> str:
    """The cache key of a CRM module's field metadata."""
    return f"crm-fields:{module}"


def books_fields_key(resource: str) -> str:
    """The cache key of a Books resource's custom fields (with their labels: entries cached
    before labels were kept are under another key, so they are never read as unlabelled)."""
    return f"books-custom-fields-labelled:{resource}"


def crm_field_metadata(runtime, module: str) -> list[dict]:
    """`settings/fields` of a CRM module (cached)."""
    return cached(runtime, crm_fields_key(module), lambda: runtime.crm.fields(module))


def books_custom_fields(runtime, resource: str, id_field: str = "cf_crm_id") -> list[dict]:
    """Custom field definitions of a Books resource (cached).

    Fields are read off a sample record; the unique id field, which a record may not carry
    yet, is probed instead: an upsert by it *without* X-Upsert for a value no record has
    answers "does not exist" (1002) when the field is a unique custom field and "invalid
    value for X-Unique-Identifier-Key" otherwise. The probe writes nothing.
    """
    if resource == "contact_persons":
        return []
    fields = _sampled_custom_fields(runtime, resource)
    fields = [f for f in fields if f["api_name"] != id_field]
    if is_unique_key(runtime, resource, id_field):
        fields.append({"api_name": id_field, "data_type": "string", "is_unique": True})
    return fields


def is_unique_key(runtime, resource: str, key: str) -> bool:
    """True when `key` is a unique custom field of the Books resource (cached; the probe
    writes nothing)."""
    def probe() -> bool:
        result = runtime.books.upsert_by_custom_field(resource, key, "crmbooks-probe-0", {},
                                                      create=False)
        return not result.ok and str(result.code) == "1002"

    return bool(cached(runtime, f"books-unique-key:{resource}:{key}", probe))


#: Records whose custom fields are read to learn the resource's fields (one list page).
SAMPLE_SIZE = 200


def _sampled_custom_fields(runtime, resource: str) -> list[dict]:
    """Custom fields seen on the records of the first list page of the resource (cached).

    Books shows a custom field on a record only where it has a value, so one record may not
    show them all: every record of the page (one request) is read, and a field seen on any of
    them counts. Where the list leaves custom fields out, the first record is read by id."""

    def fetch() -> list[dict]:
        params = {"contact_type": "customer"} if resource == "contacts" else None
        for page in runtime.books.iter_pages(resource, params, per_page=SAMPLE_SIZE):
            records = [r for r in page if "custom_fields" in r]
            if not records and page:
                one = runtime.books.get(resource, runtime.books.id_of(resource, page[0]))
                records = [one] if one else []
            seen: dict[str, dict] = {}
            for record in records:
                for f in record.get("custom_fields") or []:
                    seen.setdefault(f.get("api_name"), {
                        "api_name": f.get("api_name"), "label": f.get("label"),
                        "data_type": f.get("data_type"), "is_unique": bool(f.get("is_unique"))})
            return list(seen.values())
        return []

    return cached(runtime, books_fields_key(resource), fetch)


def resolve_view(runtime, module: str, name_or_id: str) -> str:
    """The id of a CRM custom view given its name or id; ViewNotFound otherwise."""
    view = runtime.crm.find_view(module, name_or_id)
    if not view:
        raise ViewNotFound(f"the CRM view '{name_or_id}' does not exist in {module}: pick one "
                           f"of the views listed by the CRM and run `crmbooks configure` again")
    return str(view["id"])
