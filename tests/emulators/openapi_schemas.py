"""Response schemas from Zoho's own OpenAPI files, usable as JSON Schema against emulator bodies.

The spec files are not part of this repository (their licence does not allow redistribution, see
../shared/specs/SOURCES.md); they are read in place from `<repo>/../shared/specs`.

* Zoho CRM v8 (`zoho-crm/*.json`): cross-file `$ref`s are absolute URLs into Zoho's GitHub repo.
  Each file is registered in a `referencing.Registry` under exactly that URL, so the references
  resolve locally and nothing is ever fetched.
* Zoho Books v3 (`zoho-books/*.yml`): only file-internal `$ref`s; each file is registered under a
  made-up `https://zoho-books-oas.invalid/v3/<file>` URL of its own.

OpenAPI 3.0 schema objects are a dialect of JSON Schema draft 4/5: `$ref` replaces its siblings and
`exclusiveMaximum` is a boolean, as in draft 4, so the draft 4 validator is used. What draft 4 does
not know is translated once, in memory, when a file is loaded:

* `nullable: true` becomes `null` in `type` (and in `enum` when there is one);
* `additionalProperties` is left alone: its default is `true` in both, so extra keys pass, as the
  spec allows;
* `format` is not asserted (OpenAPI lets formats be open-ended; Books timestamps such as
  `2013-11-18T02:02:51-0800` are not RFC 3339 anyway).

Known defects of the spec files are patched in memory, each with its evidence (see `_patch_*`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError, best_match
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


class UnusableSchema(Exception):
    """The spec has no schema that could check this response; the message says why."""


def specs_available() -> bool:
    """Whether the shared spec folder is beside the repository (CI puts a copy of shared/ there)."""
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
    {"page","per_page","has_more_page",…}; see ../shared/specs/SOURCES.md "Known defects" and
    ../shared/reference/zoho-api.md §4.2. The array's item schema becomes the property's schema.
    """
    patched = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if (key == "page_context" and isinstance(value, dict)
                    and value.get("type") == "array" and isinstance(value.get("items"), dict)):
                replacement = dict(value["items"])
                if "description" in value:
                    replacement.setdefault("description", value["description"])
                node[key] = replacement
                patched += 1
            else:
                patched += _patch_books_page_context(value)
    elif isinstance(node, list):
        for item in node:
            patched += _patch_books_page_context(item)
    return patched


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
        return Draft4Validator({"$ref": self.uri}, registry=self.registry)

    def errors(self, body: Any, limit: int = 8) -> list[str]:
        """Human-readable violations of `body`, deepest cause first for oneOf/anyOf failures."""
        found = sorted(self.validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        return [_describe(error) for error in found[:limit]]


def _describe(error: ValidationError) -> str:
    while error.context:  # oneOf/anyOf: say why the closest alternative failed
        error = best_match(error.context)
    instance = json.dumps(error.instance, default=str)
    if len(instance) > 120:
        instance = instance[:117] + "..."
    rule = f"{error.validator}={json.dumps(error.validator_value, default=str)}"
    if len(rule) > 160:
        rule = rule[:157] + "..."
    return f"{error.json_path}: {instance} violates {rule}"


class Specs:
    """All spec files of one `specs` folder, converted and registered for `$ref` resolution."""

    def __init__(self, root: Path = SPECS_DIR):
        self.root = root
        self.documents: dict[str, dict] = {}
        resources = []
        for path in sorted((root / "zoho-crm").glob("*.json")):
            uri = CRM_BASE + path.name
            self.documents[uri] = _to_draft4(json.loads(path.read_text(encoding="utf-8")))
        for path in sorted((root / "zoho-books").glob("*.yml")):
            uri = BOOKS_BASE + path.name
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
            document = _to_draft4(raw)
            _patch_books_page_context(document)
            self.documents[uri] = document
        for uri, document in self.documents.items():
            resources.append((uri, Resource.from_contents(document, default_specification=DRAFT4)))
        self.registry: Registry = Registry().with_resources(resources)

    @staticmethod
    def uri(product: str, file: str) -> str:
        return (CRM_BASE if product == "crm" else BOOKS_BASE) + file

    def response(self, product: str, file: str, method: str, path: str, status: int | str,
                 variant: str | None = None) -> ResponseSchema:
        """The JSON schema of `method path` answering `status` (application/json).

        When the spec declares no schema under `status` but exactly one 2xx response, that one is
        used (the CRM JSON edition declares only `200` for writes that really answer 201/207;
        ../shared/reference/zoho-api.md §3.4). A `oneOf` whose alternatives overlap (every
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
