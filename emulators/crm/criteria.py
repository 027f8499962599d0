"""Parser and evaluator for the CRM search `criteria` grammar (and custom-view criteria).

Grammar (Zoho's searchRecords documentation): ``(Field:op:value)`` conditions, combined with
``and`` / ``or`` and nested in parentheses, e.g.
``((A:equals:x) and ((B:in:1,2) or (C:starts_with:y)))``.
Inside a value a backslash escapes the next character, so ``\\(`` ``\\)`` ``\\,`` ``\\\\`` are
literal; an unescaped comma separates the values of ``in`` / ``between``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from emulators.crm.fields import NUMBER_TYPES, Field

# Zoho's error message says 15 conditions while its prose says 10 (unverified which holds).
MAX_CONDITIONS = 15
MAX_IN_VALUES = 100

OPS_BY_TYPE = {
    "date": {"equals", "not_equal", "greater_equal", "greater_than", "less_equal", "less_than",
             "between", "in"},
    "number": {"equals", "not_equal", "greater_equal", "greater_than", "less_equal",
               "less_than", "between", "in"},
    "boolean": {"equals", "not_equal"},
    "textarea": {"equals", "not_equal", "starts_with"},
    "lookup": {"equals", "not_equal", "in"},
    "picklist": {"equals", "not_equal", "in"},
    "text": {"equals", "not_equal", "starts_with", "in"},
}
ALL_OPS = set().union(*OPS_BY_TYPE.values())


class CriteriaError(Exception):
    """A criteria problem, rendered by the caller as a top-level CRM error envelope."""

    def __init__(self, code: str, message: str, details: dict):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details

    def __reduce__(self):
        # Exception pickles its args only, which are not this constructor's arguments.
        return (type(self), (self.code, self.message, self.details))



def _bad(reason: str) -> CriteriaError:
    # The wording is ours: Zoho's OpenAPI file only says INVALID_QUERY with a `reason` detail.
    return CriteriaError("INVALID_QUERY", "Invalid query formed", {"reason": reason})


@dataclass
class Cond:
    """One ``(Field:op:value)`` condition; `wanted` holds the values already coerced."""

    field: Field
    op: str
    values: list[str]
    wanted: list = dataclass_field(default_factory=list)


@dataclass
class Group:
    """``and`` / ``or`` of sub-expressions."""

    op: str
    items: list


class _Parser:
    def __init__(self, fields: Mapping[str, Field], text: str):
        self.fields, self.s, self.i, self.count = fields, text, 0, 0

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def expect(self, ch: str) -> None:
        self.ws()
        if self.i >= len(self.s) or self.s[self.i] != ch:
            raise _bad(f"expected '{ch}' at position {self.i}")
        self.i += 1

    def expr(self):
        """expr := term ('or' term)*  — 'and' binds tighter than 'or'."""
        items = [self.term()]
        while self.keyword("or"):
            items.append(self.term())
        return items[0] if len(items) == 1 else Group("or", items)

    def term(self):
        items = [self.group()]
        while self.keyword("and"):
            items.append(self.group())
        return items[0] if len(items) == 1 else Group("and", items)

    def keyword(self, word: str) -> bool:
        self.ws()
        end = self.i + len(word)
        if self.s[self.i:end].lower() == word and end < len(self.s) and (
            self.s[end].isspace() or self.s[end] == "("
        ):
            self.i = end
            return True
        return False

    def group(self):
        self.expect("(")
        self.ws()
        nested = self.i < len(self.s) and self.s[self.i] == "("
        node = self.expr() if nested else self.condition()
        self.expect(")")
        return node

    def condition(self) -> Cond:
        name = self.until(":").strip()
        self.expect(":")
        op = self.until(":").strip().lower()
        self.expect(":")
        values = self.values()
        self.count += 1
        return self.make(name, op, values)

    def until(self, stop: str) -> str:
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in stop + "()":
            self.i += 1
        return self.s[start:self.i]

    def values(self) -> list[str]:
        """Read the raw value up to the unescaped ')' and split on unescaped commas."""
        parts, cur = [], []
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch == "\\" and self.i + 1 < len(self.s):
                cur.append(self.s[self.i + 1])
                self.i += 2
                continue
            if ch == ")":
                break
            if ch == "(":
                raise _bad("unescaped '(' in value")
            if ch == ",":
                parts.append("".join(cur))
                cur = []
            else:
                cur.append(ch)
            self.i += 1
        parts.append("".join(cur))
        return parts

    def make(self, name: str, op: str, values: list[str]) -> Cond:
        f = self.fields.get(name)
        if f is None or f.data_type == "subform":
            # Zoho's wording for an unknown field in criteria (unverified).
            raise CriteriaError("INVALID_QUERY", "Invalid query formed",
                                {"reason": "invalid field", "api_name": name})
        if op not in ALL_OPS or op not in OPS_BY_TYPE[kind(f)]:
            raise CriteriaError("INVALID_QUERY", "Invalid query formed",
                                {"operator": op, "reason": "invalid operator for the field"})
        if op == "in" and len(values) > MAX_IN_VALUES:
            raise CriteriaError("INVALID_QUERY", 'Only 100 values are allowed in "IN" criteria',
                                {"param_name": name})
        if op == "between" and len(values) != 2:
            raise _bad("between needs two values")
        if op not in ("in", "between"):
            values = [",".join(values)]  # a lone unescaped comma is just text
        return Cond(f, op, values, [coerce(f, v) for v in values])


def kind(f: Field) -> str:
    """Operator family of a field's data type."""
    dt = f.data_type
    if dt in ("date", "datetime"):
        return "date"
    if dt in ("integer", "currency", "double"):
        return "number"
    if dt in ("lookup", "ownerlookup"):
        return "lookup"
    if dt in ("boolean", "textarea", "picklist"):
        return dt
    return "text"


def coerce(f: Field, raw: str):
    """Turn a criteria value into the comparable form of the field's type."""
    k, dt = kind(f), f.data_type
    try:
        if k == "number":
            return Decimal(raw.strip())
        if dt == "date":
            return datetime.strptime(raw.strip(), "%Y-%m-%d").date().isoformat()
        if dt == "datetime":
            return to_utc_iso(raw.strip())
    except (InvalidOperation, ValueError):
        raise CriteriaError("INVALID_QUERY", "Invalid query formed",
                            {"expected_data_type": dt, "reason": "invalid value"}) from None
    if k == "boolean":
        if raw.strip().lower() not in ("true", "false"):
            raise CriteriaError("INVALID_QUERY", "Invalid query formed",
                                {"expected_data_type": "boolean", "reason": "invalid value"})
        return raw.strip().lower() == "true"
    return raw.lower()


def to_utc_iso(raw: str) -> str:
    """Normalise an ISO-8601 datetime with offset to the stored UTC form."""
    dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("offset required")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse(fields: Mapping[str, Field], text: str):
    """Parse a criteria string over a module's fields (API name -> Field); raises
    CriteriaError on bad input."""
    if not text or not text.strip():
        raise _bad("empty criteria")
    p = _Parser(fields, text.strip())
    node = p.expr()
    p.ws()
    if p.i != len(p.s):
        raise _bad(f"unexpected text at position {p.i}")
    if p.count > MAX_CONDITIONS:
        raise CriteriaError("CRITERIA_LIMIT_EXCEEDED",
                            "no of criterium that can be given exceed the limit 15", {})
    return node


Getter = Callable[[dict, Field], object]


def evaluate(node, record: dict, get: Getter) -> bool:
    """Evaluate a parsed criteria tree on one record.

    `get(record, field)` returns the comparable value: lower-cased text, Decimal for numbers,
    ISO strings for dates, bool, or for lookups a tuple (id, lower-cased name).
    """
    if isinstance(node, Group):
        results = (evaluate(n, record, get) for n in node.items)
        return all(results) if node.op == "and" else any(results)
    return _match(node, get(record, node.field))


def _match(c: Cond, actual) -> bool:
    f, op, wanted = c.field, c.op, c.wanted
    if kind(f) == "lookup":
        return _match_lookup(op, actual, [v for v in c.values])
    if op == "not_equal":
        return actual is None or all(not _eq(f, actual, w, exact=True) for w in wanted)
    if actual is None:
        return False
    if op == "equals":
        return _eq(f, actual, wanted[0], exact=False)
    if op == "in":
        return any(_eq(f, actual, w, exact=True) for w in wanted)
    if op == "starts_with":
        return str(actual).startswith(str(wanted[0]))
    if op == "between":
        return wanted[0] <= actual <= wanted[1]
    cmp = {"greater_than": lambda a, b: a > b, "greater_equal": lambda a, b: a >= b,
           "less_than": lambda a, b: a < b, "less_equal": lambda a, b: a <= b}[op]
    return cmp(actual, wanted[0])


def _eq(f: Field, actual, wanted, exact: bool) -> bool:
    # `equals` behaves like `contains` on text fields, but not on picklists (Zoho's search docs).
    if kind(f) in ("text", "textarea") and not exact:
        return str(wanted) in str(actual)
    if f.data_type == "datetime":
        return str(actual)[:19] == str(wanted)[:19]
    return actual == wanted


def _match_lookup(op: str, actual, raw_values: list[str]) -> bool:
    def hit(v: str) -> bool:
        if actual is None:
            return False
        ref_id, name = actual
        return v == ref_id or v.lower() == (name or "")

    if op == "not_equal":
        return not any(hit(v) for v in raw_values)
    return any(hit(v) for v in raw_values)


def compile_tree(node, get: Getter) -> Callable[[dict], bool]:
    """A predicate equivalent to `evaluate(node, rec, get)`, with the common text and picklist
    conditions turned into direct closures (search scans every record of a module)."""
    if isinstance(node, Group):
        subs = [compile_tree(n, get) for n in node.items]
        if node.op == "and":
            return lambda rec: all(s(rec) for s in subs)
        return lambda rec: any(s(rec) for s in subs)
    fast = _fast_text(node)
    if fast is not None:
        return fast
    return lambda rec: _match(node, get(rec, node.field))


def _fast_text(c: Cond) -> Callable[[dict], bool] | None:
    k, name, wanted = kind(c.field), c.field.api_name, c.wanted
    if k not in ("text", "textarea", "picklist"):
        return None

    def low(rec: dict) -> str | None:
        value = rec.get(name)
        return value.lower() if isinstance(value, str) else None

    if c.op == "equals" and k != "picklist":
        w = wanted[0]
        return lambda rec: (v := low(rec)) is not None and w in v
    if c.op == "equals":
        w = wanted[0]
        return lambda rec: low(rec) == w
    if c.op == "starts_with":
        w = wanted[0]
        return lambda rec: (v := low(rec)) is not None and v.startswith(w)
    if c.op == "in":
        ws = set(wanted)
        return lambda rec: low(rec) in ws
    if c.op == "not_equal":
        ws = set(wanted)
        return lambda rec: low(rec) not in ws
    return None


def record_values(crm, module: str) -> Callable:
    """`get(record, field)`: comparable values for criteria evaluation. Lookups compare by id
    and by the target's display name, owners by id and full name, numbers as Decimals, text
    case-insensitively (dates and datetimes as stored)."""
    name_field = crm.catalogue.name_field

    def get(rec: dict, f):
        raw = rec.get(f.api_name)
        if raw is None:
            return None
        dt = f.data_type
        if dt == "lookup":
            target = crm.stores[f.lookup_module].records.get(raw)
            name = target.get(name_field(f.lookup_module)) if target else None
            return raw, (name or "").lower()
        if dt == "ownerlookup":
            user = crm.directory.users.get(raw, {})
            return raw, user.get("full_name", "").lower()
        if dt in NUMBER_TYPES:
            return Decimal(str(raw))
        if isinstance(raw, str):
            return raw.lower() if dt not in ("date", "datetime") else raw
        return raw

    return get
