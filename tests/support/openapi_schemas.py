"""Response schemas from Zoho's own OpenAPI files, usable as JSON Schema against emulator bodies.

The spec files are not part of this repository (they carry no licence that allows
redistribution); they are read in place from a folder beside it, `SPECS_DIR`.

* Zoho CRM v8 (`zoho-crm/*.json`, the thin JSON edition): cross-file `$ref`s are absolute URLs
  into Zoho's GitHub repo. Each file is registered in a `referencing.Registry` under exactly that
  URL, so the references resolve locally and nothing is ever fetched.
* Zoho Books v3 (`zoho-books/*.yml`): only file-internal `$ref`s; each file is registered under a
  made-up `https://zoho-books-oas.invalid/v3/<file>` URL of its own.

OpenAPI 3.0 schema objects are a dialect of JSON Schema draft 4/5: `$ref` replaces its siblings and
`exclusiveMaximum` is a boolean, as in draft 4, so the draft 4 validator is used. What draft 4 does
not know is translated once, in memory, when a file is loaded:

* `nullable: true` becomes `null` in `type` (and in `enum` when there is one);
* `additionalProperties` is left alone: its default is `true` in both, so extra keys pass, as the
  spec allows;
* `format` is not asserted (OpenAPI lets formats be open-ended; Books timestamps such as
  `2013-11-18T02:02:51-0800` are not RFC 3339 anyway);
* `type: integer` accepts 241.0 (draft 6's integer; JSON has one number type).

Known defects of the spec files are patched in memory, never in the files, each with its
evidence beside the code:

* Books: `page_context` typed as an array (object in reality); the record key of sales-order and
  contact-person answers typed as an array; a schema whose own `example` contradicts its `type`
  (amounts such as `total: {type: string, example: 10000}`) accepts the example's type too;
  items.yml's `tax_percentage` (a string there, a number in every other Books file) may be either;
  contacts.yml's receivables amounts typed `integer` may be any number; customer-payments.yml's
  list key `customer_payments` is read as `customerpayments`, the key clients parse.
* CRM: the exhaustive `required` lists of module/field/custom-view/layout metadata (and their
  non-nullable properties), `Criteria` (custom views, fields), the page-token keys of `Info`, the
  null names/users of permanently deleted records and the sample-value `pattern`s of users.json,
  all contradicted by Zoho's own v8 examples; users.json's `time_zone` (an object there, a string
  in Zoho's own SDKs) may be either.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, validators
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

REPO_ROOT = Path(__file__).resolve().parents[2]
SPECS_DIR = REPO_ROOT.parent / "shared" / "specs"
CRM_BASE = "https://raw.githubusercontent.com/Zohocorp-Pvt-Ltd/crm-oas/refs/heads/main/v8.0/"
# Never fetched: a base for the Books files (urljoin cannot resolve "#/..." against a urn:).
BOOKS_BASE = "https://zoho-books-oas.invalid/v3/"

# Keywords that make a dict a constraint on its instance (a schema that accepts anything has none).
_CONSTRAINTS = {
    "type", "properties", "items", "enum", "required", "allOf", "anyOf", "oneOf", "not",
    "$ref", "additionalProperties", "patternProperties", "minimum", "maximum", "pattern",
    "minLength", "maxLength", "minItems", "maxItems",
}


def _is_integer(checker, instance: Any) -> bool:
    # JSON has one number type: 241.0 is the integer 241 (draft 6 and later say so; draft 4 and
    # Python's json module do not, so amounts such as 0.0 would fail `type: integer`).
    if isinstance(instance, bool):
        return False
    return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())


# Draft 4 (OpenAPI 3.0's dialect) with draft 6's notion of an integer.
OpenApiValidator = validators.extend(
    Draft4Validator,
    type_checker=Draft4Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


class UnusableSchema(Exception):
    """The spec has no schema that could check this response; the message says why."""


def specs_available() -> bool:
    """Whether Zoho's OpenAPI files are in the folder beside the repository (CI copies them)."""
    return (SPECS_DIR / "zoho-crm").is_dir() and (SPECS_DIR / "zoho-books").is_dir()


# --------------------------------------------------------------------------------------------
# OpenAPI 3.0 -> JSON Schema (draft 4)
# --------------------------------------------------------------------------------------------


def _to_draft4(node: Any) -> Any:
    """A copy of an OpenAPI document whose schema objects draft 4 reads as OpenAPI means them."""
    if isinstance(node, list):
        return [_to_draft4(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_draft4(value) for key, value in node.items()}
    # A property *named* "nullable" maps to a schema (a dict); the keyword's value is a bool.
    nullable = out.get("nullable")
    if isinstance(nullable, bool):
        del out["nullable"]
        if nullable:
            _allow_null(out)
    return out


def _allow_null(schema: dict) -> None:
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        schema["type"] = [*kind, "null"]
    if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    if "type" not in schema and any(k in schema for k in ("$ref", "allOf", "anyOf", "oneOf")):
        # In OAS 3.0 `nullable` beside a $ref/combinator has no type to extend: wrap it.
        inner = {k: schema.pop(k) for k in list(schema) if k != "description"}
        schema["anyOf"] = [inner, {"type": "null"}]


# --------------------------------------------------------------------------------------------
# Known defects of the spec files, patched in memory (never in the files)
# --------------------------------------------------------------------------------------------


def _patch_books_page_context(node: Any) -> int:
    """Books: `page_context` is declared as an array of objects in estimates.yml and invoices.yml.

    The real API, Zoho's own pagination page (https://www.zoho.com/books/api/v4/pagination/) and
    the other Books files (contacts, items, sales orders, purchase orders) all make it one object
    {"page","per_page","has_more_page",…} (docs/zoho-api-notes.md, "Books pagination"). The
    array's item schema becomes the property's schema.
    """
    return _unwrap_arrays(node, {"page_context"})


# The key a Books answer puts one record under (a singular key holds one object).
BOOKS_RECORD_KEYS = {"contact", "contact_person", "item", "estimate", "invoice", "salesorder",
                     "purchaseorder", "organization", "creditnote", "payment"}


def _patch_books_record_keys(document: dict) -> int:
    """Books: the same array-for-an-object defect on the record key of some answers.

    sales-order.yml declares `salesorder` (get, create, update) and contact-persons.yml declares
    `contact_person` (create) as an array of one object, while every other Books file declares its
    record key as an object (`estimate`, `invoice`, `purchaseorder`, `contact`, `item`) and Zoho's
    response page says a single resource comes as an object. Only the answer schemas
    (components/schemas/*-response) and the shared schema of that name are touched.
    """
    schemas = document.get("components", {}).get("schemas", {})
    patched = _unwrap_arrays(schemas, BOOKS_RECORD_KEYS, deep=False)  # e.g. schemas/salesorder
    for name, schema in schemas.items():
        if name.endswith("-response") and isinstance(schema.get("properties"), dict):
            patched += _unwrap_arrays(schema["properties"], BOOKS_RECORD_KEYS, deep=False)
    return patched


def _unwrap_arrays(node: Any, keys: set[str], deep: bool = True) -> int:
    patched = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if (key in keys and isinstance(value, dict) and value.get("type") == "array"
                    and isinstance(value.get("items"), dict)):
                replacement = dict(value["items"])
                if "description" in value:
                    replacement.setdefault("description", value["description"])
                node[key] = replacement
                patched += 1
            elif deep:
                patched += _unwrap_arrays(value, keys)
    elif isinstance(node, list) and deep:
        for item in node:
            patched += _unwrap_arrays(item, keys)
    return patched


_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
               (list, "array"), (dict, "object"))


def _patch_books_example_types(node: Any) -> int:
    """Books: a schema whose own `example` contradicts its `type` gets the example's type too.

    Amounts are the usual case: invoices.yml `total` is `type: string, example: 10000`, `balance`
    is `type: string, example: 40.6`, contacts.yml `unused_credits_receivable_amount` is
    `type: integer, example: 1369.66`, purchase-order.yml `quantity` is `type: string, example:
    1`. When the spec contradicts itself the declared type cannot be trusted alone; both readings
    are accepted. (The real API sends amounts as JSON numbers, as Zoho's examples show.)
    """
    patched = 0
    if isinstance(node, dict):
        declared, example = node.get("type"), node.get("example")
        if isinstance(declared, str) and example is not None and not isinstance(example, dict):
            actual = next(name for kind, name in _JSON_TYPES if isinstance(example, kind))
            fits = actual == declared or (declared == "number" and actual == "integer") or (
                declared == "integer" and actual == "number" and float(example).is_integer())
            if not fits:
                node["type"] = [declared, "number" if actual == "integer" else actual]
                patched += 1
        for value in node.values():
            patched += _patch_books_example_types(value)
    elif isinstance(node, list):
        for item in node:
            patched += _patch_books_example_types(item)
    return patched


# CRM (JSON edition, zoho/crm-oas @45dff2c): what Zoho's own v8 response examples contradict. The
# examples are in the same repository's YAML edition (commits a6687fc…, 381a419…), read through
# the search index, e.g. v8.0/modules/operations/getModules/examples/response-200-*.md,
# v8.0/fields/operations/getFields/examples/response-200-fullexample.md,
# v8.0/custom_views/operations/getCustomViews/examples/response-200-successresponse.md,
# v8.0/users/operations/getUsers/examples/response-200-usersgetresponse.md,
# v8.0/record/operations/getRecords/examples/response-200-leads.md.

# Metadata item schemas whose `required` lists name every key the generator ever saw (61 for a
# module, 75 for a field, including impossible ones such as "common.search_supported",
# "common.picklist", "file_upolad_optionlist") while Zoho's own examples carry a fraction of them
# and null for many of the rest ("modified_by": null, "description": null, "crypt": null, …).
# There, `required` is dropped and every declared property may be null; declared types still
# apply to non-null values.
CRM_METADATA_ITEMS = {
    "modules.json": ("modules", "fields"),
    "fields.json": ("fields", "Criteria"),
    "custom_views.json": ("custom_views", "Criteria"),
    "layouts.json": ("layouts", "fields"),
}
# `Criteria` (custom views, field filters) requires both the leaf keys (comparator, field, value)
# and the group keys (group_operator, group) on every node and types `value` as an object; Zoho's
# getCustomViewById example has a leaf {"comparator","field","type","value":"1"} with neither
# group key and a string value. Besides the relaxation above, `value` may be any JSON value.
CRM_UNTYPED = {
    "fields.json": {"Criteria": ("value",)},
    "custom_views.json": {"Criteria": ("value",)},
}
# Properties Zoho's own examples show as null where the JSON edition types them non-nullable.
CRM_NULLABLE = {
    # getRecords example: "previous_page_token": null; related-records example: all three null
    "record.json": {
        "Info": ("next_page_token", "previous_page_token", "page_token_expiry"),
        # getDeletedRecords example: "type": "permanent" items have null display_name and users
        "Deleted_Record": ("display_name", "deleted_by", "created_by"),
    },
}


def _patch_books_tax_percentage(file: str, document: dict) -> int:
    """items.yml types `tax_percentage` as a string (example "70%"); every other Books file types
    the same key as a number (contacts.yml example 12, estimates.yml and invoices.yml 12.5,
    sales-order.yml number, purchase-order.yml integer 0). Zoho's files disagree with each
    other, so items accept both readings; the emulator sends a number, as the rest of Books.
    """
    schema = document.get("components", {}).get("schemas", {}).get("tax_percentage")
    if file != "items.yml" or not isinstance(schema, dict) or schema.get("type") != "string":
        return 0
    schema["type"] = ["string", "number"]
    return 1


# contacts.yml types the receivables as `integer` (example 250 for the outstanding amounts):
# money in cents is not an integer, and the same file's `unused_credits_receivable_amount` has
# the example 1369.66 under the same `integer` type; invoices.yml's `balance` (example 40.6)
# is the amount those figures add up. They may be any number.
BOOKS_AMOUNTS = {"contacts.yml": ("outstanding_receivable_amount",
                                  "outstanding_receivable_amount_bcy",
                                  "unused_credits_receivable_amount",
                                  "unused_credits_receivable_amount_bcy")}


def _patch_books_amounts(file: str, document: dict) -> int:
    """Amount schemas typed `integer` (BOOKS_AMOUNTS) accept any number."""
    schemas = document.get("components", {}).get("schemas", {})
    patched = 0
    for name in BOOKS_AMOUNTS.get(file, ()):
        schema = schemas.get(name)
        if isinstance(schema, dict) and "integer" in (
                [schema.get("type")] if isinstance(schema.get("type"), str)
                else schema.get("type") or []):
            schema["type"] = "number"
            patched += 1
    return patched


def _patch_books_payments_list_key(file: str, document: dict) -> int:
    """customer-payments.yml names the list key `customer_payments`; Zoho's API page for the
    list shows `customerpayments`, as every published client reading that list parses it, and
    as the emulator answers. The list schema's property is renamed to the key clients see.
    """
    schema = document.get("components", {}).get("schemas", {}).get(
        "list-customer-payments-response")
    if file != "customer-payments.yml" or not isinstance(schema, dict):
        return 0
    properties = schema.get("properties", {})
    if "customer_payments" not in properties:
        return 0
    properties["customerpayments"] = properties.pop("customer_payments")
    return 1


def _patch_crm(file: str, document: dict) -> int:
    schemas = document.get("components", {}).get("schemas", {})
    patched = 0
    for name in CRM_METADATA_ITEMS.get(file, ()):
        schema = schemas[name]
        if schema.pop("required", None) is not None:
            patched += 1
        for prop in schema.get("properties", {}).values():
            if isinstance(prop, dict):
                _allow_null(prop)
    for name, props in CRM_UNTYPED.get(file, {}).items():
        for prop in props:
            schemas[name]["properties"][prop] = {}
            patched += 1
    for name, props in CRM_NULLABLE.get(file, {}).items():
        for prop in props:
            _allow_null(schemas[name]["properties"][prop])
            patched += 1
    if file == "users.json":
        # users.json `pattern`s are made from one sample value: the user's email must match
        # "[a-z0-9]{9}[@][a-z0-9]{5}[.]com", which Zoho's own example "user@example.com" fails.
        patched += _drop_key(document, "pattern")
        # `time_zone` is typed object|null here, but Zoho's own SDKs read it as a string (the
        # v2 and v2.1 Python SDKs, zoho/zohocrm-python-sdk and zohocrm-python-sdk-2.1,
        # zcrmsdk/src/com/zoho/crm/api/users/user.py: set_time_zone expects a str; the Ruby
        # SDKs likewise) and Zoho's v8 getUsers examples do not show the key at all.
        zone = schemas["users"]["properties"]["time_zone"]
        zone["type"] = [*zone["type"], "string"] if isinstance(zone["type"], list) else [
            zone["type"], "string"]
        patched += 1
    return patched


def _drop_key(node: Any, key: str) -> int:
    dropped = 0
    if isinstance(node, dict):
        if isinstance(node.get(key), str) and ("type" in node or "format" in node):
            del node[key]
            dropped += 1
        for value in node.values():
            dropped += _drop_key(value, key)
    elif isinstance(node, list):
        for item in node:
            dropped += _drop_key(item, key)
    return dropped


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseSchema:
    """The schema a spec declares for one operation's response with one status."""

    uri: str  # "<document uri>#<json pointer>" of the schema node
    declared_status: str  # the status the schema was declared under (may differ from the asked)
    registry: Registry

    @property
    def validator(self) -> Draft4Validator:
        return OpenApiValidator({"$ref": self.uri}, registry=self.registry)

    def errors(self, body: Any, limit: int = 30) -> list[str]:
        """Distinct violations of `body`, one line each, array indices folded into `[*]`.

        For a failed oneOf/anyOf the alternative that came closest (fewest violations) is
        explained, not the whole list of alternatives.
        """
        counts: dict[str, int] = {}
        for error in self.validator.iter_errors(body):
            for line in _explain(error):
                counts[line] = counts.get(line, 0) + 1
        lines = [f"{line} (x{n})" if n > 1 else line for line, n in sorted(counts.items())]
        if len(lines) > limit:
            lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
        return lines


def _explain(error: ValidationError) -> list[str]:
    if error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        # The alternative that came closest: not the bare "or null" of a nullable $ref, then
        # the fewest violations, then the deepest ones.
        closest = min(branches.values(), key=lambda errs: (
            all(e.validator == "type" and e.validator_value == "null" for e in errs),
            len(errs), -max(len(e.absolute_path) for e in errs)))
        return [line for sub in closest for line in _explain(sub)]
    return [_describe(error)]


def _describe(error: ValidationError) -> str:
    where = re.sub(r"\[\d+\]", "[*]", error.json_path)
    if error.validator == "required":
        return f"{where}: missing required {error.message.split(' is a required')[0]}"
    instance = json.dumps(error.instance, default=str, ensure_ascii=False)
    if len(instance) > 80:
        instance = instance[:77] + "..."
    rule = json.dumps(error.validator_value, default=str)
    if len(rule) > 120:
        rule = rule[:117] + "..."
    return f"{where}: {instance} violates {error.validator}={rule}"


class Specs:
    """All spec files of one `specs` folder, converted and registered for `$ref` resolution."""

    def __init__(self, root: Path = SPECS_DIR):
        self.root = root
        self.documents: dict[str, dict] = {}
        self.patches: dict[str, int] = {}  # file -> how many schema nodes were patched
        resources = []
        for path in sorted((root / "zoho-crm").glob("*.json")):
            document = _to_draft4(json.loads(path.read_text(encoding="utf-8")))
            self.patches[path.name] = _patch_crm(path.name, document)
            self.documents[CRM_BASE + path.name] = document
        for path in sorted((root / "zoho-books").glob("*.yml")):
            uri = BOOKS_BASE + path.name
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # a safe loader
            document = _to_draft4(raw)
            self.patches[path.name] = (_patch_books_page_context(document)
                                       + _patch_books_record_keys(document)
                                       + _patch_books_example_types(document)
                                       + _patch_books_tax_percentage(path.name, document)
                                       + _patch_books_amounts(path.name, document)
                                       + _patch_books_payments_list_key(path.name, document))
            self.documents[uri] = document
        for uri, document in self.documents.items():
            resources.append((uri, Resource.from_contents(document, default_specification=DRAFT4)))
        self.registry: Registry = Registry().with_resources(resources).crawl()

    @staticmethod
    def uri(product: str, file: str) -> str:
        return (CRM_BASE if product == "crm" else BOOKS_BASE) + file

    def response(self, product: str, file: str, method: str, path: str, status: int | str,
                 variant: str | None = None) -> ResponseSchema:
        """The JSON schema of `method path` answering `status` (application/json).

        When the spec declares no schema under `status` but exactly one 2xx response, that one is
        used (the CRM JSON edition declares only `200` for writes that really answer 201/207;
        docs/zoho-api-notes.md, "CRM writes"). A `oneOf` whose alternatives overlap (every
        alternative accepts the same success body) is narrowed to `variant`, the alternative whose
        `$ref` ends with `/<variant>`. Raises UnusableSchema when nothing checkable is declared.
        """
        doc_uri = self.uri(product, file)
        document = self.documents.get(doc_uri)
        if document is None:
            raise UnusableSchema(f"{file} is not among the spec files")
        operation = document.get("paths", {}).get(path, {}).get(method.lower())
        if operation is None:
            raise UnusableSchema(f"{file} declares no {method.upper()} {path}")
        responses = operation.get("responses", {})
        pointer = ["paths", path, method.lower(), "responses"]
        declared = str(status)
        if declared not in responses:
            successes = [code for code in responses if code.startswith("2") and code != "204"]
            if not (declared.startswith("2") and len(successes) == 1):
                raise UnusableSchema(f"{file} {method.upper()} {path} declares no {status} "
                                     f"response (declared: {', '.join(responses) or 'none'})")
            declared = successes[0]
        node, base, pointer = responses[declared], doc_uri, [*pointer, declared]
        if "$ref" in node:  # components/responses/X
            base, pointer = self._follow(base, node["$ref"])
            node = self._at(base, pointer)
        schema = node.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            raise UnusableSchema(f"{file} {method.upper()} {path} {declared}: no "
                                 "application/json schema")
        pointer = [*pointer, "content", "application/json", "schema"]
        for combinator in ("oneOf", "anyOf"):
            options = schema.get(combinator)
            if not options:
                continue
            index = self._pick(options, variant, f"{file} {method.upper()} {path} {declared}")
            schema, pointer = options[index], [*pointer, combinator, str(index)]
            break
        uri = f"{base}#{_pointer(pointer)}"
        if _accepts_anything(self._resolve(uri)):
            raise UnusableSchema(f"{file} {method.upper()} {path} {declared}: the schema is "
                                 "empty (it accepts any body)")
        return ResponseSchema(uri=uri, declared_status=declared, registry=self.registry)

    def declared_statuses(self, product: str, file: str, method: str, path: str) -> list[str]:
        """The response codes the spec declares for an operation (empty when it has none)."""
        operation = self.documents.get(self.uri(product, file), {}).get("paths", {}).get(
            path, {}).get(method.lower(), {})
        return list(operation.get("responses", {}))

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _pick(options: list, variant: str | None, where: str) -> int:
        names = [str(o.get("$ref", "")).rsplit("/", 1)[-1] or f"#{i}"
                 for i, o in enumerate(options)]
        if variant is None:
            if len(options) == 1:
                return 0
            raise UnusableSchema(f"{where}: oneOf {names} needs a variant")
        if variant not in names:
            raise UnusableSchema(f"{where}: no alternative {variant!r} in {names}")
        return names.index(variant)

    def _follow(self, base: str, ref: str) -> tuple[str, list[str]]:
        target, _, fragment = ref.partition("#")
        uri = target or base
        return uri, [_unescape(p) for p in fragment.split("/")[1:]]

    def _at(self, uri: str, pointer: list[str]) -> Any:
        node: Any = self.documents[uri]
        for part in pointer:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def _resolve(self, uri: str, depth: int = 0) -> dict:
        base, _, fragment = uri.partition("#")
        node = self._at(base, [_unescape(p) for p in fragment.split("/")[1:]])
        if isinstance(node, dict) and "$ref" in node and depth < 20:
            target, pointer = self._follow(base, node["$ref"])
            return self._resolve(f"{target}#{_pointer(pointer)}", depth + 1)
        return node

    def schema_of(self, product: str, file: str, name: str) -> dict:
        """A copy of components/schemas/<name> (for tests that inspect the spec itself)."""
        return copy.deepcopy(self.documents[self.uri(product, file)]["components"]["schemas"][name])


def _accepts_anything(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    if not (set(schema) & _CONSTRAINTS):
        return True
    # {"type": "object"} with nothing else says no more than "a JSON object".
    return set(schema) & _CONSTRAINTS == {"type"} and schema["type"] == "object"


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _pointer(parts: list[str]) -> str:
    return "".join("/" + _escape(p) for p in parts)


@cache
def load_specs(root: str = str(SPECS_DIR)) -> Specs:
    """The specs, loaded once per process."""
    return Specs(Path(root))
