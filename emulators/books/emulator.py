"""Zoho Books v3 emulator: a FastAPI router served under /books/v3 and the legacy /api/v3.

What the real API does that this router mirrors: `organization_id` on every call but GET
/organizations; JSON bodies or the legacy form field `JSONString`; `{"code":0,"message":…,
"<key>":…}` envelopes with an object `page_context`; 201 on create; `{"code":N,"message":…}`
errors (the codes and their sources are listed at the top of emulators.books.state).
Emulator-only controls are Python methods (`register_webhook`, `add_document_type`), never
extra /books routes (the test controls under `/__emulator__/` in emulators.controls call them).
"""

from __future__ import annotations

import copy
import json
import random
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from emulators.books import receivables
from emulators.books.listing import list_page
from emulators.books.records import (
    invoice_from_estimate,
    new_contact,
    new_item,
    new_transaction,
    release_refs,
    update_contact,
    update_item,
    update_transaction,
)
from emulators.books.resources import (
    CONTACTS,
    CREDITNOTES,
    CUSTOMERPAYMENTS,
    ESTIMATES,
    INVOICES,
    ITEMS,
    RECEIVABLES,
    TRANSACTIONS,
    Resource,
    transaction_resource,
)
from emulators.books.seed import crm_id_field, seed_books
from emulators.books.state import (
    BAD_ORG,
    FIRST_ID,
    INVALID,
    NOT_WELL_FORMED,
    Org,
    build_person,
    drop_unique,
    fmt_time,
    get_bool,
    invalid,
    not_found,
    refresh_primary,
)
from emulators.books.webhooks import WebhookDispatcher
from emulators.common.documents import BUILT_IN, DocumentType
from emulators.common.envelopes import books_error, json_response

PREFIXES = ("/books/v3", "/api/v3")


#: The custom-field data types `add_custom_field` accepts (those Books' custom fields report).
CUSTOM_FIELD_TYPES = {"string", "multiline", "email", "url", "phone", "number", "decimal",
                      "amount", "percent", "date", "check_box"}


class BooksEmulator:
    """State and routes of the emulated Zoho Books (one or more organizations)."""

    def __init__(self, emu):
        self.emu = emu
        self.orgs: dict[str, Org] = {}
        self._next_id = FIRST_ID
        self.webhooks = WebhookDispatcher()
        self.resources: list[Resource] = [CONTACTS, ITEMS, *TRANSACTIONS, *RECEIVABLES]
        # Documents a write changed besides its own record (the invoices a payment pays),
        # announced after it by `_emit`; only touched under the emulator lock.
        self._also_changed: list[tuple[Resource, dict]] = []
        # Document types declared at run time, by resource name (the built-in ones are in
        # TRANSACTIONS); kept by `seed`.
        self.documents: dict[str, DocumentType] = {}

    # ---------------------------------------------------------------- state helpers

    def new_id(self) -> str:
        """The next 15-digit numeric id (unique across organizations and resources)."""
        self._next_id += 1
        return str(self._next_id)

    def seed(self, rng: random.Random, sizes, crm) -> None:
        """Replace all state with deterministic sample data (see emulators.books.seed).
        Resources of document types declared at run time stay served, with no records."""
        with self.emu.lock:
            self.orgs = {}
            self._next_id = FIRST_ID
            seed_books(self, rng, sizes, crm)
            # After the sample data, so that its ids are the same as without declared types.
            for doc in self.documents.values():
                self._install(self._resource(doc.resource))

    def add_document_type(self, doc: DocumentType) -> list[tuple[str, str, Any]]:
        """Serve the Books resource of a document type declared at run time; returns the
        routes (method, full path, handler) that are new, for the app to mount. Each
        organization gets the resource's unique custom field `cf_crm_id`. Declaring the same
        type again changes nothing; a different declaration of a taken name is a ValueError."""
        with self.emu.lock:
            known = self.documents.get(doc.resource)
            if known == doc:
                return []
            taken = {r.plural for r in self.resources} | {r.key for r in self.resources}
            if known is not None or doc.resource in taken or doc.key in taken or any(
                    d.resource == doc.resource for d in BUILT_IN):
                raise ValueError(f"Books already serves a resource named {doc.resource} or "
                                 f"{doc.key}")
            resource = transaction_resource(doc)
            self.documents[doc.resource] = doc
            self.resources.append(resource)
            self._install(resource)
        return [(method, full, handler) for prefix in PREFIXES
                for method, path, handler in self._resource_routes(resource)
                for full in _with_slash(prefix + path)]

    def add_custom_field(self, resource: str, api_name: str, label: str,
                         data_type: str) -> dict:
        """Emulator-only: a custom field an administrator adds to a Books resource (estimates,
        invoices …) in every organization; its definition is returned and records show it
        in `custom_fields[]` (api_name, label, data_type, value) once given a value. Gone at
        the next seed. ValueError for an unknown resource or type, or a taken name."""
        with self.emu.lock:
            found = next((r for r in self.resources if resource in (r.plural, r.key)), None)
            if found is None:
                raise ValueError(f"unknown Books resource {resource}")
            if data_type not in CUSTOM_FIELD_TYPES:
                raise ValueError("data_type must be one of "
                                 f"{', '.join(sorted(CUSTOM_FIELD_TYPES))}")
            if not api_name.startswith("cf_") or not label:
                raise ValueError("api_name (cf_…) and label are required")
            orgs = list(self.orgs.values())
            if any(d["api_name"] == api_name or d["label"] == label
                   for org in orgs for d in org.custom_fields.get(found.key, [])):
                raise ValueError(f"{found.plural} already have a custom field {api_name} "
                                 f"or one labelled {label!r}")
            definition = {"customfield_id": self.new_id(), "label": label,
                          "api_name": api_name, "data_type": data_type, "is_unique": False,
                          "is_active": True}
            for org in orgs:
                fields = org.custom_fields.setdefault(found.key, [])
                fields.append({**definition,
                               "index": max((d["index"] for d in fields), default=0) + 1})
            return {**definition, "resource": found.plural}

    def _resource(self, plural: str) -> Resource:
        return next(r for r in self.resources if r.plural == plural)

    def _install(self, resource: Resource) -> None:
        """Give every organization the custom fields of a declared resource."""
        for org in self.orgs.values():
            org.custom_fields[resource.key] = [crm_id_field(self)]

    def org(self, org_id: str | None = None) -> Org:
        """An organization's state (the default organization when no id is given)."""
        return self.orgs[org_id or self.emu.config.books_org_ids[0]]

    def register_webhook(self, org_id: str, url: str, secret: str,
                         header: str = "X-Webhook-Secret") -> None:
        """Emulator-only: POST {"event_type","data"} to `url` on every write in `org_id`.

        Real Books webhooks are configured in the UI with custom headers (Settings > Workflow
        Actions > Webhooks); here one header carries the shared secret. Delivery is
        asynchronous (a daemon thread), so requests never wait for the receiver.
        """
        self.webhooks.register(org_id, url, secret, header)

    def unregister_webhook(self, org_id: str) -> None:
        """Emulator-only: stop sending webhooks for an organization."""
        self.webhooks.unregister(org_id)

    # ---------------------------------------------------------------- router

    def router(self) -> APIRouter:
        """Routes for /books/v3/… and /api/v3/… (same handlers), each with and without a
        trailing slash."""
        router = APIRouter()
        for prefix in PREFIXES:
            for method, path, handler in self._routes():
                for full in _with_slash(prefix + path):
                    router.add_api_route(full, handler, methods=[method],
                                         include_in_schema=False)
        return router

    def _routes(self) -> list[tuple[str, str, Any]]:
        routes = [
            ("GET", "/organizations", self.h_orgs),
            ("GET", "/organizations/{organization_id}", self.h_org),
            ("GET", "/settings/currencies", self.h_currencies),
            ("POST", "/contacts/contactpersons", self.h_person_create),
            ("PUT", "/contacts/contactpersons/{person_id}", self.h_person_update),
            ("DELETE", "/contacts/contactpersons/{person_id}", self.h_person_delete),
            ("POST", "/contacts/contactpersons/{person_id}/primary", self.h_person_primary),
            ("GET", "/contacts/{record_id}/contactpersons", self.h_person_list),
            ("GET", "/contacts/{record_id}/contactpersons/{person_id}", self.h_person_get),
            ("POST", "/invoices/fromestimates", self.h_from_estimates),
            ("GET", "/itemdetails", self.h_item_details),
            ("POST", "/creditnotes/{record_id}/invoices", self.h_credit_apply),
            ("GET", "/creditnotes/{record_id}/invoices", self.h_credit_list),
            ("DELETE", "/creditnotes/{record_id}/invoices/{application_id}",
             self.h_credit_remove),
            ("GET", "/invoices/{record_id}/payments", self.h_invoice_payments),
            ("GET", "/invoices/{record_id}/creditsapplied", self.h_invoice_credits),
        ]
        for resource in self.resources:
            routes += self._resource_routes(resource)
        return routes

    def _resource_routes(self, resource: Resource) -> list[tuple[str, str, Any]]:
        """List, create, upsert, get, update, delete and the status actions of a resource."""
        base = "/" + resource.plural
        routes = [
            ("GET", base, self._bind(self.h_list, resource)),
            ("POST", base, self._bind(self.h_create, resource)),
            ("PUT", base, self._bind(self.h_upsert, resource)),
            ("GET", base + "/{record_id}", self._bind(self.h_get, resource)),
            ("PUT", base + "/{record_id}", self._bind(self.h_update, resource)),
            ("DELETE", base + "/{record_id}", self._bind(self.h_delete, resource)),
        ]
        if resource in (CONTACTS, INVOICES, CUSTOMERPAYMENTS):  # the bulk deletes Zoho documents
            routes.append(("DELETE", base, self._bind(self.h_bulk_delete, resource)))
        if resource in (CONTACTS, ITEMS):
            for action in ("active", "inactive"):
                routes.append(("POST", f"{base}/{{record_id}}/{action}",
                               self._bind(self.h_activity, resource, action)))
        for action in resource.transitions:
            routes.append(("POST", f"{base}/{{record_id}}/status/{action}",
                           self._bind(self.h_status, resource, action)))
        return routes

    @staticmethod
    def _bind(handler, *args):
        async def endpoint(request: Request) -> Response:
            """The route's handler with its resource (and action) bound."""
            return await handler(request, *args)

        return endpoint

    # ---------------------------------------------------------------- request plumbing

    def _auth(self, request: Request, scope: str, operation: str) -> None:
        self.emu.authorize(request, "books", f"ZohoBooks.{scope}.{operation}")

    def _org_of(self, request: Request) -> Org:
        """The organization named by ?organization_id= (required on every call but GET
        /organizations)."""
        org_id = request.query_params.get("organization_id", "").strip()
        if not org_id or not org_id.isdigit():
            raise invalid("organization_id")  # integrators report 400, code 2
        org = self.orgs.get(org_id)
        if org is None:  # Deluge docs: code 6041 for an org the user is not part of
            raise books_error(BAD_ORG, "This user is not associated with the "
                              f"CompanyID/CompanyName:{org_id}.")
        return org

    async def _body(self, request: Request) -> dict:
        """The request body: JSON, or the legacy form field JSONString (old clients send
        the JSON as that form field)."""
        ctype = request.headers.get("content-type", "").lower()
        if "form-urlencoded" in ctype or "multipart/form-data" in ctype:
            try:
                form = await request.form()
            except Exception:  # a broken form body is bad input, never a 500
                raise invalid("JSONString") from None
            raw = form.get("JSONString")
            if raw is None or not isinstance(raw, str):
                raise invalid("JSONString")
        else:
            try:
                raw = (await request.body()).decode("utf-8")
            except UnicodeDecodeError:
                raise invalid("JSONString") from None
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw, parse_float=Decimal)
        except (ValueError, RecursionError):
            # Integrators report "Invalid value passed for JSONString".
            raise invalid("JSONString") from None
        if not isinstance(data, dict):
            raise books_error(NOT_WELL_FORMED, "JSON is not well formed")
        return data

    def _now(self) -> datetime:
        return self.emu.now()

    def _emit(self, org: Org, resource: Resource, action: str, record: dict) -> None:
        """After every successful write: refresh the receivables of the customers it touches,
        invalidate cached sort orders, send the webhook; then the same for the documents the
        write changed besides (an invoice a payment pays is updated too)."""
        also, self._also_changed = self._also_changed, []
        stamp = fmt_time(self._now())
        for kind, event, document in [(resource, action, record)] + [
                (r, "updated", d) for r, d in also]:
            if document is not record:
                document["last_modified_time"] = stamp
            receivables.touched(org, kind, document, event)
            org.version += 1
            if self.webhooks.wants(org.id):
                self.webhooks.send(org.id, f"{kind.key}_{event}", document)

    def _also(self, resource: Resource, records) -> None:
        """Documents the current write changed besides its own record."""
        self._also_changed += [(resource, r) for r in records]

    # ---------------------------------------------------------------- organizations

    async def h_orgs(self, request: Request) -> Response:
        """GET /organizations: the only call without organization_id."""
        self._auth(request, "settings", "READ")
        with self.emu.lock:
            orgs = [org.info for org in self.orgs.values()]
            return json_response({"code": 0, "message": "success", "organizations": orgs})

    async def h_org(self, request: Request) -> Response:
        """GET /organizations/{organization_id}."""
        self._auth(request, "settings", "READ")
        org_id = request.path_params["organization_id"]
        with self.emu.lock:
            org = self.orgs.get(org_id)
            if org is None:
                raise books_error(BAD_ORG, "This user is not associated with the "
                                  f"CompanyID/CompanyName:{org_id}.")
            return json_response({"code": 0, "message": "success", "organization": org.info})

    async def h_currencies(self, request: Request) -> Response:
        """GET /settings/currencies: the org's enabled currencies with exchange rates."""
        self._auth(request, "settings", "READ")
        with self.emu.lock:
            org = self._org_of(request)
            return json_response({"code": 0, "message": "success",
                                  "currencies": list(org.currencies.values())})

    # ---------------------------------------------------------------- generic CRUD

    async def h_list(self, request: Request, resource: Resource) -> Response:
        """GET /<collection>: filters, sort and page_context."""
        self._auth(request, resource.scope, "READ")
        with self.emu.lock:
            org = self._org_of(request)
            rows, context = list_page(org, resource, request.query_params)
            return json_response({"code": 0, "message": "success", resource.plural: rows,
                                  "page_context": context})

    async def h_get(self, request: Request, resource: Resource) -> Response:
        """GET /<collection>/{id}: the full record."""
        self._auth(request, resource.scope, "READ")
        with self.emu.lock:
            org = self._org_of(request)
            record = org.get(resource, request.path_params["record_id"])
            if resource is CUSTOMERPAYMENTS:
                receivables.refresh_rows(record, org)
            return json_response({"code": 0, "message": "success", resource.key: record})

    async def h_create(self, request: Request, resource: Resource) -> Response:
        """POST /<collection>: 201 with the created record."""
        self._auth(request, resource.scope, "CREATE")
        with self.emu.lock:
            org = self._org_of(request)
        data = await self._body(request)
        with self.emu.lock:
            record = self._create(org, resource, data, request.query_params)
            response = json_response({"code": 0, "message": resource.messages["created"],
                                      resource.key: record}, status=201)
            self._emit(org, resource, "created", record)
            return response

    def _create(self, org: Org, resource: Resource, data: dict, query) -> dict:
        """Create or nothing: a validation error leaves no trace in the org's indexes."""
        backup = _Backup(org)
        try:
            return self._create_unsafe(org, resource, data, query)
        except Exception:
            backup.restore(org)
            self._also_changed = []
            raise

    def _create_unsafe(self, org: Org, resource: Resource, data: dict, query) -> dict:
        record_id, now = self.new_id(), self._now()
        if resource is CONTACTS:
            record = new_contact(org, data, record_id, now, self.new_id)
        elif resource is ITEMS:
            record = new_item(org, data, record_id, now)
        elif resource is CUSTOMERPAYMENTS:
            record, changed = receivables.new_payment(org, data, record_id, now)
            self._also(INVOICES, changed)
        else:
            manual = _flag(query, "ignore_auto_number_generation")
            record = new_transaction(org, resource, data, record_id, now, self.new_id, manual)
            # ?send=true e-mails an estimate/invoice on creation, which marks it sent.
            if resource in (ESTIMATES, INVOICES) and _flag(query, "send"):
                record["status"] = "sent"
        org.table(resource)[record_id] = record
        return record

    def _update(self, org: Org, resource: Resource, record: dict, data: dict) -> None:
        now = self._now()
        if resource is CONTACTS:
            update_contact(org, record, data, now, self.new_id)
        elif resource is ITEMS:
            update_item(org, record, data, now)
        elif resource is CUSTOMERPAYMENTS:
            self._also(INVOICES, receivables.update_payment(org, record, data, now))
        else:
            update_transaction(org, resource, record, data, now, self.new_id)

    async def h_update(self, request: Request, resource: Resource) -> Response:
        """PUT /<collection>/{id}: a partial update."""
        self._auth(request, resource.scope, "UPDATE")
        with self.emu.lock:
            org = self._org_of(request)
        data = await self._body(request)
        with self.emu.lock:
            record = org.get(resource, request.path_params["record_id"])
            _check_editable(resource, record)
            self._update_atomic(org, resource, record, data)
            response = json_response({"code": 0, "message": resource.messages["updated"],
                                      resource.key: record})
            self._emit(org, resource, "updated", record)
            return response

    def _update_atomic(self, org: Org, resource: Resource, record: dict, data: dict) -> None:
        """Apply an update or nothing: a validation error leaves the record as it was."""
        snapshot = copy.deepcopy(record)  # one record: cheap, and only on writes
        backup = _Backup(org)
        try:
            self._update(org, resource, record, data)
        except Exception:
            backup.restore(org)
            record.clear()
            record.update(snapshot)
            self._also_changed = []
            raise

    async def h_upsert(self, request: Request, resource: Resource) -> Response:
        """PUT /<collection> with X-Unique-Identifier-Key/-Value and optional X-Upsert: update
        the record whose unique custom field has that value, or create it when X-Upsert is
        true."""
        self._auth(request, resource.scope, "UPDATE")
        with self.emu.lock:
            org = self._org_of(request)
        key = request.headers.get("x-unique-identifier-key", "").strip()
        value = request.headers.get("x-unique-identifier-value", "")
        upsert = request.headers.get("x-upsert", "").strip().lower() == "true"
        data = await self._body(request)
        with self.emu.lock:
            definition = next((d for d in org.custom_fields.get(resource.key, [])
                               if d["api_name"] == key and d["is_unique"]), None)
            if definition is None:
                raise invalid("X-Unique-Identifier-Key")
            if not value:
                raise invalid("X-Unique-Identifier-Value")
            found = org.unique.get((resource.plural, key, value))
            if found is None:
                if not upsert:
                    raise not_found(resource.label)
                data = _with_custom_value(data, key, value)
                record = self._create(org, resource, data, request.query_params)
                response = json_response({"code": 0, "message": resource.messages["created"],
                                          resource.key: record}, status=201)
                self._emit(org, resource, "created", record)
                return response
            record = org.table(resource)[found]
            _check_editable(resource, record)
            self._update_atomic(org, resource, record, data)
            response = json_response({"code": 0, "message": resource.messages["updated"],
                                      resource.key: record})
            self._emit(org, resource, "updated", record)
            return response

    async def h_delete(self, request: Request, resource: Resource) -> Response:
        """DELETE /<collection>/{id}; contacts/items in use by transactions cannot go."""
        self._auth(request, resource.scope, "DELETE")
        with self.emu.lock:
            org = self._org_of(request)
            record = self._deletable(org, resource, request.path_params["record_id"])
            self._remove(org, resource, record)
            return json_response({"code": 0, "message": resource.messages["deleted"]})

    async def h_bulk_delete(self, request: Request, resource: Resource) -> Response:
        """DELETE /contacts?contact_ids=a,b, /invoices?invoice_ids=a,b and
        /customerpayments?payment_id=a,b&bulk_delete=true (customer-payments.yml names the
        parameter in the singular): all or none."""
        self._auth(request, resource.scope, "DELETE")
        name = "payment_id" if resource is CUSTOMERPAYMENTS else f"{resource.key}_ids"
        with self.emu.lock:
            org = self._org_of(request)
            ids = [i.strip() for i in request.query_params.get(name, "").split(",")
                   if i.strip()]
            if not ids or not all(i.isdigit() for i in ids):
                raise invalid(name)
            records = [self._deletable(org, resource, i) for i in dict.fromkeys(ids)]
            for record in records:
                self._remove(org, resource, record)
            noun = "payments" if resource is CUSTOMERPAYMENTS else resource.plural
            return json_response({"code": 0, "message": f"The {noun} have been deleted."})

    @staticmethod
    def _deletable(org: Org, resource: Resource, record_id: str) -> dict:
        record = org.get(resource, record_id)
        if resource in (CONTACTS, ITEMS) and org.refs.get(record_id, 0) > 0:
            noun = "contact" if resource is CONTACTS else "item"
            raise books_error(INVALID, f"The {noun} is associated with transactions and "
                              "cannot be deleted. Mark it as inactive instead.")
        return record

    def _remove(self, org: Org, resource: Resource, record: dict) -> None:
        now = self._now()
        if resource is CUSTOMERPAYMENTS:
            self._also(INVOICES, receivables.release_payment(org, record))
        elif resource is CREDITNOTES:
            self._also(INVOICES, receivables.release_creditnote(org, record, now))
        elif resource is INVOICES:
            payments, notes = receivables.release_invoice(org, record, now)
            self._also(CUSTOMERPAYMENTS, payments)
            self._also(CREDITNOTES, notes)
        self._forget(org, resource, record)
        del org.table(resource)[record[resource.id_field]]
        self._emit(org, resource, "deleted", record)

    @staticmethod
    def _forget(org: Org, resource: Resource, record: dict) -> None:
        drop_unique(org, resource, record)
        if resource is CONTACTS:
            org.names.pop((record["contact_type"], record["contact_name"]), None)
            for person in record["contact_persons"]:
                org.person_owner.pop(person["contact_person_id"], None)
        elif resource is ITEMS:
            org.names.pop(("item", record["name"]), None)
            org.skus.pop(record["sku"], None)
        elif resource is CUSTOMERPAYMENTS:
            pass  # no name or number; its hold on the customer went with release_payment
        else:
            release_refs(org, resource, record)
            org.names.pop((resource.plural, record[resource.number_field]), None)

    async def h_activity(self, request: Request, resource: Resource, action: str) -> Response:
        """POST /contacts|items/{id}/active|inactive (Zoho documents the CREATE scope)."""
        self._auth(request, resource.scope, "CREATE")
        with self.emu.lock:
            org = self._org_of(request)
            record = org.get(resource, request.path_params["record_id"])
            record["status"] = action
            record["last_modified_time"] = fmt_time(self._now())
            noun = resource.key
            self._emit(org, resource, "updated", record)
            return json_response({"code": 0,
                                  "message": f"The {noun} has been marked as {action}."})

    async def h_status(self, request: Request, resource: Resource, action: str) -> Response:
        """POST /<collection>/{id}/status/<action>: the documented status machine."""
        self._auth(request, resource.scope, "CREATE")
        transition = resource.transitions[action]
        with self.emu.lock:
            org = self._org_of(request)
            record = org.get(resource, request.path_params["record_id"])
            if record["status"] == transition.to:
                # Re-marking the current status changes nothing and succeeds (live Books'
                # behaviour is not documented); it keeps status calls safe to replay.
                return json_response({"code": 0, "message": transition.message},
                                     status=transition.http_status)
            if record["status"] not in transition.allowed_from:
                raise books_error(INVALID, f"The {resource.label.lower()} status cannot be "
                                  f"changed from {record['status']} to {transition.to}.")
            if transition.to == "void":
                receivables.check_void(resource, record)
            now = self._now()
            record["status"] = transition.to
            if resource is ESTIMATES and transition.to in ("accepted", "declined"):
                record[f"{transition.to}_date"] = now.date().isoformat()
            receivables.settle(resource, record)
            record["last_modified_time"] = fmt_time(now)
            self._emit(org, resource, "updated", record)
            return json_response({"code": 0, "message": transition.message},
                                 status=transition.http_status)

    async def h_from_estimates(self, request: Request) -> Response:
        """POST /invoices/fromestimates?estimate_ids=a,b (Zoho documents a 200 without the
        invoices in the body)."""
        self._auth(request, "invoices", "CREATE")
        with self.emu.lock:
            org = self._org_of(request)
            raw = request.query_params.get("estimate_ids", "")
            ids = [i.strip() for i in raw.split(",") if i.strip()]
            if not ids or not all(i.isdigit() for i in ids):
                raise invalid("estimate_ids")
            estimates = [org.get(ESTIMATES, i) for i in ids]
            for estimate in estimates:
                if estimate["status"] in ("invoiced", "declined"):
                    raise books_error(INVALID, f"Estimate {estimate['estimate_number']} "
                                      f"cannot be converted: it is {estimate['status']}.")
            for estimate in estimates:
                self._invoice_estimate(org, estimate)
            return json_response({"code": 0, "message": "The invoices have been created."})

    def _invoice_estimate(self, org: Org, estimate: dict) -> None:
        now = self._now()
        invoice = invoice_from_estimate(org, estimate, self.new_id(), now, self.new_id)
        org.table(INVOICES)[invoice["invoice_id"]] = invoice
        estimate["status"] = "invoiced"
        estimate["last_modified_time"] = fmt_time(now)
        self._emit(org, INVOICES, "created", invoice)
        self._emit(org, ESTIMATES, "updated", estimate)

    async def h_item_details(self, request: Request) -> Response:
        """GET /itemdetails?item_ids=a,b: several items in full."""
        self._auth(request, "settings", "READ")
        with self.emu.lock:
            org = self._org_of(request)
            raw = request.query_params.get("item_ids", "")
            ids = [i.strip() for i in raw.split(",") if i.strip()]
            if not ids or not all(i.isdigit() for i in ids):
                raise invalid("item_ids")
            items = [org.get(ITEMS, i) for i in ids]
            return json_response({"code": 0, "message": "success", "items": items})

    # ---------------------------------------------------------------- receivables

    async def h_credit_apply(self, request: Request) -> Response:
        """POST /creditnotes/{id}/invoices {"invoices": [{"invoice_id", "amount_applied"}]}:
        credit invoices of the same customer from an open credit note."""
        self._auth(request, "creditnotes", "CREATE")
        with self.emu.lock:
            org = self._org_of(request)
        data = await self._body(request)
        with self.emu.lock:
            note = org.get(CREDITNOTES, request.path_params["record_id"])
            applied = receivables.apply_credits(org, note, data, self._now(), self.new_id)
            response = json_response({
                "code": 0, "message": "Credits have been applied to the invoice(s).",
                "apply_to_invoices": {"invoices": applied}}, status=200)
            self._also(INVOICES, [org.get(INVOICES, a["invoice_id"]) for a in applied])
            self._emit(org, CREDITNOTES, "updated", note)
            return response

    async def h_credit_list(self, request: Request) -> Response:
        """GET /creditnotes/{id}/invoices: the invoices credited from a credit note."""
        self._auth(request, "creditnotes", "READ")
        with self.emu.lock:
            org = self._org_of(request)
            note = org.get(CREDITNOTES, request.path_params["record_id"])
            rows = [{"creditnote_id": note["creditnote_id"],
                     "creditnote_number": note["creditnote_number"], **row}
                    for row in note.get("invoices_credited", [])]
            return json_response({"code": 0, "message": "success",
                                  "invoices_credited": rows})

    async def h_credit_remove(self, request: Request) -> Response:
        """DELETE /creditnotes/{id}/invoices/{creditnote_invoice_id}: the invoice owes the
        amount again."""
        self._auth(request, "creditnotes", "DELETE")
        with self.emu.lock:
            org = self._org_of(request)
            note = org.get(CREDITNOTES, request.path_params["record_id"])
            if not request.path_params["application_id"].isdigit():
                raise invalid("creditnote_invoice_id")
            invoice = receivables.remove_credit(org, note, request.path_params[
                "application_id"], self._now())
            self._also(INVOICES, [invoice] if invoice else [])
            self._emit(org, CREDITNOTES, "updated", note)
            return json_response({"code": 0, "message": "Credits applied to an invoice "
                                  "have been deleted."})

    async def h_invoice_payments(self, request: Request) -> Response:
        """GET /invoices/{id}/payments: the payments applied to an invoice."""
        self._auth(request, "invoices", "READ")
        with self.emu.lock:
            org = self._org_of(request)
            invoice = org.get(INVOICES, request.path_params["record_id"])
            # invoices.yml types payment_number as an integer here (a string in the payment).
            rows = [{"payment_id": p["payment_id"],
                     "payment_number": int(p["payment_number"]),
                     "invoice_payment_id": p["payment_id"],
                     "invoice_id": invoice["invoice_id"], "date": p["date"],
                     "payment_mode": p["payment_mode"], "description": p["description"],
                     "reference_number": p["reference_number"],
                     "amount": r["amount_applied"], "exchange_rate": p["exchange_rate"]}
                    for p in receivables.customer_documents(org, invoice["customer_id"],
                                                            CUSTOMERPAYMENTS)
                    for r in p["invoices"]
                    if r["invoice_id"] == invoice["invoice_id"]]
            return json_response({"code": 0, "message": "success", "payments": rows})

    async def h_invoice_credits(self, request: Request) -> Response:
        """GET /invoices/{id}/creditsapplied: the credit notes applied to an invoice."""
        self._auth(request, "invoices", "READ")
        with self.emu.lock:
            org = self._org_of(request)
            invoice = org.get(INVOICES, request.path_params["record_id"])
            rows = [{"creditnote_id": n["creditnote_id"],
                     "creditnotes_number": n["creditnote_number"],
                     "creditnotes_invoice_id": r["creditnote_invoice_id"],
                     "credited_date": r["date"], "amount_applied": r["amount_applied"]}
                    for n in receivables.customer_documents(org, invoice["customer_id"],
                                                            CREDITNOTES)
                    for r in n.get("invoices_credited", [])
                    if r["invoice_id"] == invoice["invoice_id"]]
            return json_response({"code": 0, "message": "success", "credits": rows})

    # ---------------------------------------------------------------- contact persons

    async def h_person_create(self, request: Request) -> Response:
        """POST /contacts/contactpersons (body names the contact_id)."""
        self._auth(request, "contacts", "CREATE")
        with self.emu.lock:
            org = self._org_of(request)
        data = await self._body(request)
        with self.emu.lock:
            contact_id = str(data.get("contact_id") or "")
            if not contact_id.isdigit():
                raise invalid("contact_id")
            contact = org.get(CONTACTS, contact_id)
            if not str(data.get("first_name") or "").strip():
                raise books_error(4, "Please enter first_name.")
            person = build_person({k: v for k, v in data.items() if k != "contact_id"},
                                  self.new_id())
            contact["contact_persons"].append(person)
            org.person_owner[person["contact_person_id"]] = contact_id
            _make_primary_if_asked(contact, person, data)
            self._touch_contact(org, contact)
            return json_response({"code": 0, "message": "The contactperson has been Created",
                                  "contact_person": _person_out(person, contact_id)},
                                 status=201)

    async def h_person_update(self, request: Request) -> Response:
        """PUT /contacts/contactpersons/{id}."""
        self._auth(request, "contacts", "UPDATE")
        with self.emu.lock:
            org = self._org_of(request)
        data = await self._body(request)
        with self.emu.lock:
            contact, index = self._person(org, request.path_params["person_id"])
            fields = {k: v for k, v in data.items() if k != "contact_id"}
            if "contact_id" in data and str(data["contact_id"]) != contact["contact_id"]:
                raise invalid("contact_id")
            person = build_person(fields, "", contact["contact_persons"][index])
            contact["contact_persons"][index] = person
            _make_primary_if_asked(contact, person, data)
            self._touch_contact(org, contact)
            return json_response({"code": 0,
                                  "message": "The contactperson details has been updated.",
                                  "contact_person": _person_out(person,
                                                                contact["contact_id"])})

    async def h_person_delete(self, request: Request) -> Response:
        """DELETE /contacts/contactpersons/{id}."""
        self._auth(request, "contacts", "DELETE")
        with self.emu.lock:
            org = self._org_of(request)
            person_id = request.path_params["person_id"]
            contact, index = self._person(org, person_id)
            del contact["contact_persons"][index]
            org.person_owner.pop(person_id, None)
            self._touch_contact(org, contact)
            return json_response({"code": 0, "message": "The contact person has been deleted."})

    async def h_person_primary(self, request: Request) -> Response:
        """POST /contacts/contactpersons/{id}/primary."""
        self._auth(request, "contacts", "CREATE")
        with self.emu.lock:
            org = self._org_of(request)
            contact, index = self._person(org, request.path_params["person_id"])
            for i, person in enumerate(contact["contact_persons"]):
                person["is_primary_contact"] = i == index
            self._touch_contact(org, contact)
            return json_response({"code": 0, "message": "This contact person has been marked "
                                  "as your primary contact person."})

    async def h_person_list(self, request: Request) -> Response:
        """GET /contacts/{contact_id}/contactpersons."""
        self._auth(request, "contacts", "READ")
        with self.emu.lock:
            org = self._org_of(request)
            contact = org.get(CONTACTS, request.path_params["record_id"])
            persons = contact["contact_persons"]
            context = {"page": 1, "per_page": 200, "has_more_page": False,
                       "sort_column": "contact_person_id", "sort_order": "A"}
            return json_response({"code": 0, "message": "success",
                                  "contact_persons": persons, "page_context": context})

    async def h_person_get(self, request: Request) -> Response:
        """GET /contacts/{contact_id}/contactpersons/{id}."""
        self._auth(request, "contacts", "READ")
        with self.emu.lock:
            org = self._org_of(request)
            contact = org.get(CONTACTS, request.path_params["record_id"])
            person = next((p for p in contact["contact_persons"]
                           if p["contact_person_id"] == request.path_params["person_id"]),
                          None)
            if person is None:
                raise not_found("Contact person")
            return json_response({"code": 0, "message": "success",
                                  "contact_person": _person_out(person,
                                                                contact["contact_id"])})

    def _person(self, org: Org, person_id: str) -> tuple[dict, int]:
        contact_id = org.person_owner.get(person_id)
        if contact_id is None:
            raise not_found("Contact person")
        contact = org.get(CONTACTS, contact_id)
        for index, person in enumerate(contact["contact_persons"]):
            if person["contact_person_id"] == person_id:
                return contact, index
        raise not_found("Contact person")

    def _touch_contact(self, org: Org, contact: dict) -> None:
        refresh_primary(contact)
        contact["last_modified_time"] = fmt_time(self._now())
        self._emit(org, CONTACTS, "updated", contact)


# ---------------------------------------------------------------------------------------------


def _with_slash(path: str) -> tuple[str, str]:
    """A path and its trailing-slash twin, both served directly. Clients built on Zoho's own
    Books Python wrapper put a slash after every collection URL (`.../contacts/`); a redirect
    there would make HTTP clients drop the Authorization header and the retry fail with 401."""
    return path, path + "/"


def _flag(query, name: str) -> bool:
    """A boolean query parameter (true/false); absent means false."""
    value = query.get(name)
    if value is None:
        return False
    return bool(get_bool({name: value}, name))


def _check_editable(resource: Resource, record: dict) -> None:
    """Void invoices/sales orders and billed/cancelled POs are not edited in Books."""
    if record.get("status") in ("void", "cancelled", "billed") and resource.party is not None:
        raise books_error(INVALID, f"A {record['status']} {resource.label.lower()} cannot be "
                          "edited.")


def _with_custom_value(data: dict, api_name: str, value: str) -> dict:
    """Upsert-create: the record gets the unique value named in the headers."""
    fields = [cf for cf in data.get("custom_fields") or []
              if not (isinstance(cf, dict) and cf.get("api_name") == api_name)]
    if not isinstance(data.get("custom_fields", []), list):
        raise invalid("custom_fields")
    return {**data, "custom_fields": [*fields, {"api_name": api_name, "value": value}]}


def _make_primary_if_asked(contact: dict, person: dict, data: dict) -> None:
    """is_primary_contact: true on one person takes the flag from the others."""
    if get_bool(data, "is_primary_contact"):
        for other in contact["contact_persons"]:
            other["is_primary_contact"] = other is person


def _person_out(person: dict, contact_id: str) -> dict:
    return {"contact_id": contact_id, **person}


class _Backup:
    """Copies of the org indexes an update may touch, to undo a half-applied update."""

    def __init__(self, org: Org):
        self.names = dict(org.names)
        self.skus = dict(org.skus)
        self.unique = dict(org.unique)
        self.refs = dict(org.refs)
        self.person_owner = dict(org.person_owner)
        self.numbers = dict(org.numbers)

    def restore(self, org: Org) -> None:
        """Put the copied indexes back."""
        org.names, org.skus, org.unique = self.names, self.skus, self.unique
        org.refs, org.person_owner = self.refs, self.person_owner
        org.numbers = self.numbers


__all__ = ["BooksEmulator"]
