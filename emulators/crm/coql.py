"""A useful subset of COQL (`POST /crm/v8/coql`) for the CRM emulator.

Supported: ``select <cols> from <Module> [where <cond>] [order by <col> [asc|desc], …]
[limit [offset,] count | limit count offset n]``; conditions ``= != > < >= <=``, ``like`` /
``not like`` with ``%``, ``in`` / ``not in``, ``between … and …``, ``is [not] null``, combined
with ``and`` / ``or`` and parentheses. Columns may be ``Lookup.field`` (e.g.
``Account_Name.Account_Name``, ``Account_Name.id``). Zoho's limits: at most 50 columns, 2000 rows
per call and offset + count up to 100,000; LIMIT is 200 and the order ascending id by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

MAX_COLUMNS = 50
MAX_LIMIT = 2000
MAX_ROWS = 100_000
DEFAULT_LIMIT = 200
MAX_WHERE = 25

TOKEN_RE = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.|'')*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])"
    r"|(?P<op>>=|<=|!=|<>|=|<|>)|(?P<punct>[(),*])|(?P<ident>[A-Za-z_$][\w$]*(?:\.[\w$]+)*))"
)


class CoqlError(Exception):
    """A COQL error rendered by the caller as a top-level CRM error envelope."""

    def __init__(self, code: str, message: str, details: dict):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details

    def __reduce__(self):
        # Exception pickles its args only, which are not this constructor's arguments.
        return (type(self), (self.code, self.message, self.details))



def syntax(near: str, column: int, clause: str | None = None) -> CoqlError:
    """SYNTAX_ERROR with the location details Zoho's OpenAPI file describes ({line, column,
    near}; its other variant, {clause}, is for a missing clause, which we do not
    distinguish)."""
    del clause  # kept at call sites as documentation of where the parser was
    return CoqlError("SYNTAX_ERROR", f"error occurred near {near!r}",
                     {"near": near, "line": 1, "column": column})


@dataclass
class Tok:
    """One lexical token."""

    kind: str
    text: str
    pos: int

    @property
    def low(self) -> str:
        """Lower-case text, for keyword comparison."""
        return self.text.lower()


@dataclass
class Query:
    """A parsed select statement."""

    columns: list[str]
    module: str
    where: object | None = None
    order: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    offset: int = 0
    limit: int = DEFAULT_LIMIT


@dataclass
class Cmp:
    """``column <op> value(s)``; `meta` (the column's Field) and `coerced` are filled in
    before evaluation."""

    column: str
    op: str
    values: list
    coerced: list = field(default_factory=list)
    meta: object = None


@dataclass
class Bool:
    """``and`` / ``or`` node."""

    op: str
    items: list


def tokenize(text: str) -> list[Tok]:
    """Split a query into tokens; SYNTAX_ERROR at the first unknown character."""
    toks, i = [], 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        m = TOKEN_RE.match(text, i)
        if not m or m.end() == i:
            raise syntax(text[i:i + 10].strip(), i + 1)
        kind = m.lastgroup
        toks.append(Tok(kind, m.group(kind), m.start(kind)))
        i = m.end()
    return toks


class _Parser:
    def __init__(self, text: str):
        self.toks = tokenize(text)
        self.i = 0
        self.conds = 0

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise syntax("<end of query>", 0)
        self.i += 1
        return tok

    def is_kw(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "ident" and tok.low in words

    def kw(self, word: str, clause: str | None = None) -> None:
        tok = self.peek()
        if tok is None or tok.low != word:
            raise syntax(tok.text if tok else "<end of query>", tok.pos + 1 if tok else 0, clause)
        self.i += 1

    def ident(self, clause: str) -> str:
        tok = self.take()
        if tok.kind != "ident":
            raise syntax(tok.text, tok.pos + 1, clause)
        return tok.text

    def query(self) -> Query:
        self.kw("select", "select")
        cols = [self.ident("select")]
        while self.peek() and self.peek().text == ",":
            self.i += 1
            cols.append(self.ident("select"))
        self.kw("from", "from")
        q = Query(cols, self.ident("from"))
        if self.is_kw("where"):
            self.i += 1
            q.where = self.or_expr()
        if self.is_kw("order"):
            self.i += 1
            self.kw("by", "order by")
            q.order = self.order()
        if self.is_kw("limit"):
            self.i += 1
            self.limit(q)
        tok = self.peek()
        if tok is not None:
            raise syntax(tok.text, tok.pos + 1)
        return q

    def order(self) -> list[tuple[str, bool]]:
        out = []
        while True:
            col = self.ident("order by")
            desc = False
            if self.is_kw("asc", "desc"):
                desc = self.take().low == "desc"
            out.append((col, desc))
            if not (self.peek() and self.peek().text == ","):
                return out
            self.i += 1

    def limit(self, q: Query) -> None:
        first = self.number("limit")
        if self.peek() and self.peek().text == ",":
            self.i += 1
            q.offset, q.limit = first, self.number("limit")
        elif self.is_kw("offset"):
            self.i += 1
            q.limit, q.offset = first, self.number("offset")
        else:
            q.limit = first

    def number(self, clause: str) -> int:
        tok = self.take()
        if tok.kind != "num" or "." in tok.text or tok.text.startswith("-"):
            raise syntax(tok.text, tok.pos + 1, clause)
        return int(tok.text)

    def or_expr(self):
        items = [self.and_expr()]
        while self.is_kw("or"):
            self.i += 1
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Bool("or", items)

    def and_expr(self):
        items = [self.atom()]
        while self.is_kw("and"):
            self.i += 1
            items.append(self.atom())
        return items[0] if len(items) == 1 else Bool("and", items)

    def atom(self):
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.i += 1
            node = self.or_expr()
            close = self.take()
            if close.text != ")":
                raise syntax(close.text, close.pos + 1, "where")
            return node
        return self.comparison()

    def comparison(self) -> Cmp:
        col = self.ident("where")
        self.conds += 1
        tok = self.take()
        if tok.kind == "op":
            return Cmp(col, "!=" if tok.text == "<>" else tok.text, [self.value()])
        word = tok.low
        negate = False
        if word == "not":
            negate, word = True, self.take().low
        if word == "like":
            return Cmp(col, "not like" if negate else "like", [self.value()])
        if word == "in":
            return Cmp(col, "not in" if negate else "in", self.value_list())
        if word == "between" and not negate:
            low = self.value()
            self.kw("and", "where")
            return Cmp(col, "between", [low, self.value()])
        if word == "is" and not negate:
            is_not = self.is_kw("not")
            if is_not:
                self.i += 1
            self.kw("null", "where")
            return Cmp(col, "is not null" if is_not else "is null", [])
        raise syntax(tok.text, tok.pos + 1, "where")

    def value_list(self) -> list:
        tok = self.take()
        if tok.text != "(":
            raise syntax(tok.text, tok.pos + 1, "where")
        values = [self.value()]
        while self.peek() and self.peek().text == ",":
            self.i += 1
            values.append(self.value())
        close = self.take()
        if close.text != ")":
            raise syntax(close.text, close.pos + 1, "where")
        return values

    def value(self):
        tok = self.take()
        if tok.kind == "str":
            inner = tok.text[1:-1]
            return re.sub(r"\\(.)", r"\1", inner.replace("''", "'"))
        if tok.kind == "num":
            return Decimal(tok.text)
        if tok.kind == "ident" and tok.low in ("true", "false"):
            return tok.low == "true"
        if tok.kind == "ident" and tok.low == "null":
            return None
        raise syntax(tok.text, tok.pos + 1, "where")


def parse(text: str) -> Query:
    """Parse a select query and enforce the documented limits."""
    if not isinstance(text, str) or not text.strip():
        raise CoqlError("MANDATORY_NOT_FOUND", "required field not found",
                        {"api_name": "select_query"})
    p = _Parser(text.strip())
    q = p.query()
    if len(q.columns) > MAX_COLUMNS:
        raise CoqlError("LIMIT_EXCEEDED", "select columns limit exceeded",
                        {"clause": "select", "limit": MAX_COLUMNS})
    if p.conds > MAX_WHERE:
        raise CoqlError("LIMIT_EXCEEDED", "criteria limit exceeded",
                        {"clause": "where", "limit": MAX_WHERE})
    if q.limit < 1 or q.limit > MAX_LIMIT:
        # Zoho's OpenAPI file lists an INVALID_QUERY variant with a `limit` detail for this
        # case; the message is unverified.
        raise CoqlError("INVALID_QUERY", "limit exceeds the maximum allowed value",
                        {"limit": str(MAX_LIMIT)})
    if q.offset + q.limit > MAX_ROWS:
        raise CoqlError("INVALID_QUERY", "offset exceeds the maximum allowed value",
                        {"offset": str(q.offset)})
    seen = set()
    for col in q.columns:
        if col.lower() in seen:
            raise CoqlError("DUPLICATE_DATA", "duplicate column found", {"column_name": col})
        seen.add(col.lower())
    return q


def like_regex(pattern: str) -> re.Pattern:
    """Compile a COQL LIKE pattern (``%`` wildcard, case-insensitive)."""
    parts = [re.escape(p) for p in pattern.split("%")]
    return re.compile("^" + ".*".join(parts) + "$", re.IGNORECASE | re.DOTALL)
