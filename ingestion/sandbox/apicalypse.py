"""Parser and evaluator for the subset of IGDB's Apicalypse query language the sandbox serves.

Request bodies of ``POST /v4/<endpoint>`` look like
``fields id,name; where updated_at >= 1700000000 & id > 500; sort id asc; limit 500;``.
``POST /v4/multiquery`` bundles up to ten of them, each framed as
``query <endpoint>[/count] "<name>" { <body> };`` (`parse_multiquery`).
Anything outside the supported subset is rejected with an IGDB-style message rather than
guessed at, so pipeline code cannot pass against the sandbox with a query IGDB would
read differently.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any, NamedTuple

Scalar = int | float | str | bool | None
Predicate = Callable[[Mapping[str, Any]], bool]


class ApicalypseError(ValueError):
    """A query the server rejects; `cause` is the IGDB-style human message."""

    cause: str

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


# --- AST -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ValueList:
    """`(a, b)` (match_all=False: any value matches) or `[a, b]` (match_all: array has all)."""
    values: tuple[Scalar, ...]
    match_all: bool


@dataclass(frozen=True)
class Comparison:
    """`field OP value`; a ValueList only ever appears with `=` / `!=`."""
    field: str
    op: str
    value: Scalar | ValueList


@dataclass(frozen=True)
class And:
    """`a & b & ...`: every operand must hold."""
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """`a | b | ...`: at least one operand must hold."""
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    """`!field OP value`: negation of a single comparison (never of a group)."""
    operand: Comparison


Expr = Comparison | And | Or | Not


@dataclass(frozen=True)
class Query:
    """A parsed request body; the defaults are what IGDB assumes for an omitted clause."""
    fields: tuple[str, ...] | None = ("id",)  # None means "*"
    where: Expr | None = None
    sort: tuple[str, bool] | None = None  # (field, ascending)
    limit: int = 10
    offset: int = 0


# --- Parsing -------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""(?P<space>\s+)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<symbol>>=|<=|!=|[=<>&|!(),;\[\]*~])""",
    re.VERBOSE | re.DOTALL,
)
_CLAUSES = {
    "fields": "fields", "f": "fields", "exclude": "exclude", "x": "exclude",
    "where": "where", "w": "where", "sort": "sort", "s": "sort",
    "limit": "limit", "l": "limit", "offset": "offset", "o": "offset", "search": "search",
}
_COMPARATORS = frozenset({"=", "!=", ">", ">=", "<", "<="})
_LITERALS: dict[str, Scalar] = {"null": None, "true": True, "false": False}
_NO_WILDCARDS = "Wildcard/case-insensitive matching ('~', '*') is not supported by the sandbox"


class _Token(NamedTuple):
    kind: str  # string | number | word | symbol
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            rest = text[pos:pos + 20]
            if rest.startswith('"'):
                raise ApicalypseError(f"Unterminated string starting at '{rest}'")
            raise ApicalypseError(f"Syntax error near '{rest}'")
        if m.lastgroup != "space":
            tokens.append(_Token(str(m.lastgroup), m.group()))
        pos = m.end()
    return tokens


def _syntax_error(tok: _Token | None) -> ApicalypseError:
    if tok is None:
        return ApicalypseError("Syntax error: unexpected end of query")
    if tok == _Token("symbol", ")"):
        return ApicalypseError("Unbalanced parenthesis: unexpected ')'")
    return ApicalypseError(f"Syntax error near '{tok.text}'")


class _Parser:
    """Recursive descent over the token list; one instance per query."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise _syntax_error(None)
        self.pos += 1
        return tok

    def accept(self, symbol: str) -> bool:
        """Consume the next token if it is `symbol`."""
        if self.peek() == _Token("symbol", symbol):
            self.pos += 1
            return True
        return False

    def field_name(self) -> str:
        tok = self.take()
        if tok.kind != "word":
            raise _syntax_error(tok)
        if "." in tok.text:
            raise ApicalypseError(f"Field '{tok.text}': expansion not supported by the sandbox")
        return tok.text

    def field_list(self) -> tuple[str, ...] | None:
        names = ["*" if self.accept("*") else self.field_name()]
        while self.accept(","):
            names.append("*" if self.accept("*") else self.field_name())
        return None if "*" in names else tuple(dict.fromkeys(names))

    def sort(self) -> tuple[str, bool]:
        field = self.field_name()
        tok = self.peek()
        if tok is None or tok.kind != "word":
            return field, True
        if tok.text.lower() not in ("asc", "desc"):
            raise ApicalypseError(f"Sort direction must be 'asc' or 'desc', got '{tok.text}'")
        self.take()
        return field, tok.text.lower() == "asc"

    def integer(self, clause: str) -> int:
        tok = self.take()
        if tok.kind != "number" or not re.fullmatch(r"-?\d+", tok.text):
            raise ApicalypseError(f"{clause.capitalize()} must be an integer, got '{tok.text}'")
        return int(tok.text)

    def expression(self) -> Expr:
        """An `|` chain of `&` chains, so `&` binds tighter than `|`."""
        operands = [self.conjunction()]
        while self.accept("|"):
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self) -> Expr:
        operands = [self.unary()]
        while self.accept("&"):
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Expr:
        if self.accept("!"):
            if self.peek() == _Token("symbol", "("):
                raise ApicalypseError("'!' cannot negate a parenthesised group")
            return Not(self.comparison())
        if self.accept("("):
            expr = self.expression()
            if not self.accept(")"):
                tok = self.peek()
                near = "end of query" if tok is None else f"'{tok.text}'"
                raise ApicalypseError(f"Unbalanced parenthesis: expected ')' near {near}")
            return expr
        return self.comparison()

    def comparison(self) -> Comparison:
        field = self.field_name()
        tok = self.take()
        if tok.text == "~":
            raise ApicalypseError(_NO_WILDCARDS)
        if tok.kind != "symbol" or tok.text not in _COMPARATORS:
            raise ApicalypseError(
                f"Expecting an operator (=, !=, >, >=, <, <=) after '{field}', got '{tok.text}'"
            )
        op = tok.text
        for opener, closer in (("(", ")"), ("[", "]")):
            if self.accept(opener):
                if op not in ("=", "!="):
                    raise ApicalypseError(f"Value lists only work with '=' and '!=', not '{op}'")
                values = self.value_list(closer)
                return Comparison(field, op, ValueList(values, match_all=opener == "["))
        value = self.scalar()
        if op not in ("=", "!=") and (value is None or isinstance(value, bool)):
            raise ApicalypseError(f"Operator '{op}' needs a number or string, not {json.dumps(value)}")
        return Comparison(field, op, value)

    def value_list(self, closer: str) -> tuple[Scalar, ...]:
        values = [self.scalar()]
        while not self.accept(closer):
            if not self.accept(","):
                near = self.take().text
                raise ApicalypseError(f"Unbalanced list: expected ',' or '{closer}' near '{near}'")
            values.append(self.scalar())
        if None in values:
            raise ApicalypseError("null is not allowed inside a value list")
        return tuple(values)

    def scalar(self) -> Scalar:
        tok = self.take()
        if tok.kind == "number":
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "string":
            if self.peek() == _Token("symbol", "*"):
                raise ApicalypseError(_NO_WILDCARDS)
            try:
                return str(json.loads(tok.text, strict=False))
            except ValueError:
                raise ApicalypseError(f"Invalid escape sequence in string {tok.text}") from None
        if tok.kind == "word":
            if tok.text.lower() in _LITERALS:
                return _LITERALS[tok.text.lower()]
            raise ApicalypseError("Expecting a STRING as input, surround your input with quotes"
                                  f" starting at '{tok.text}'")
        if tok.text in ("*", "~"):
            raise ApicalypseError(_NO_WILDCARDS)
        raise _syntax_error(tok)


def parse_query(text: str, max_limit: int = 500) -> Query:
    """Parse a request body strictly, so malformed queries fail here as they would on IGDB."""
    parser = _Parser(text)
    clauses: dict[str, Any] = {}
    while (tok := parser.peek()) is not None:
        parser.take()
        if tok.kind != "word":
            raise _syntax_error(tok)
        name = _CLAUSES.get(tok.text.lower())
        if name is None:
            raise ApicalypseError(f"Unknown clause '{tok.text}'")
        if name == "search":
            raise ApicalypseError("The 'search' clause is not supported by the sandbox")
        if name in clauses:
            raise ApicalypseError(f"Duplicate clause '{name}': each clause may appear only once")
        body = {"fields": parser.field_list, "exclude": parser.field_list,
                "where": parser.expression, "sort": parser.sort}.get(name)
        clauses[name] = body() if body else parser.integer(name)
        if not parser.accept(";") and parser.peek() is not None:
            raise _syntax_error(parser.peek())
    limit, offset = clauses.get("limit", 10), clauses.get("offset", 0)
    if not 1 <= limit <= max_limit:
        raise ApicalypseError(f"Limit must be between 1 and {max_limit}")
    if offset < 0:
        raise ApicalypseError("Offset must be 0 or greater")
    # `exclude` is validated above but deliberately not applied.
    fields = clauses.get("fields", ("id",))
    return Query(fields, clauses.get("where"), clauses.get("sort"), limit, offset)


# --- Multiquery ----------------------------------------------------------------------------

MAX_SUBQUERIES = 10  # IGDB answers at most ten queries per multiquery and rejects the whole request beyond

_SUBQUERY_HEAD_RE = re.compile(
    r"""\s*(?i:query)\s+
        (?P<endpoint>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)?)\s*
        (?P<name>"(?:[^"\\]|\\.)*")\s*\{""",
    re.VERBOSE | re.DOTALL,
)
_BRACE_OR_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"?|[{}]', re.DOTALL)
_SEMICOLON_RE = re.compile(r"\s*;")
_ONLY_SPACE_RE = re.compile(r"\s*\Z")


@dataclass(frozen=True)
class SubQuery:
    """One `query <entity>[/count] "<name>" { ... };` of a multiquery, body already parsed."""
    entity: str
    name: str
    count: bool  # `<entity>/count`: answered with a count, not records
    query: Query


class _Frame(NamedTuple):
    """A sub-query as written, before its endpoint and body are checked."""
    endpoint: str
    name: str
    body: str


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` that closes the `{` before `start`, or -1.

    Braces inside string literals do not count, so `where name = "a}b"` stays one body.
    """
    depth = 1
    for m in _BRACE_OR_STRING_RE.finditer(text, start):
        token = m.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return -1


def _frames(text: str) -> list[_Frame]:
    """Split a multiquery body into its sub-queries; framing errors name the sub-query they are in."""
    frames: list[_Frame] = []
    pos = 0
    while not _ONLY_SPACE_RE.match(text, pos):
        head = _SUBQUERY_HEAD_RE.match(text, pos)
        if head is None:
            near = text[pos:].strip()[:20]
            raise ApicalypseError(f"Query {len(frames) + 1}: expected 'query <endpoint> \"<name>\" {{' near '{near}'")
        try:
            name = str(json.loads(head["name"], strict=False))
        except ValueError:
            raise ApicalypseError(f"Query {len(frames) + 1}: invalid escape sequence in name {head['name']}") from None
        if not name:
            raise ApicalypseError(f"Query {len(frames) + 1}: the name must not be empty")
        end = _closing_brace(text, head.end())
        if end < 0:
            raise ApicalypseError(f'Query "{name}": missing the closing \'}}\'')
        semicolon = _SEMICOLON_RE.match(text, end + 1)
        if semicolon is None:
            raise ApicalypseError(f'Query "{name}": expected \';\' after \'}}\'')
        frames.append(_Frame(head["endpoint"], name, text[head.end():end]))
        pos = semicolon.end()
    return frames


def _subquery(frame: _Frame, entities: Container[str], max_limit: int) -> SubQuery:
    """Check one frame's endpoint and parse its body; a cause names the sub-query it is about."""
    entity, _, suffix = frame.endpoint.partition("/")
    if entity not in entities or suffix not in ("", "count"):
        raise ApicalypseError(f'Query "{frame.name}": unknown endpoint \'{frame.endpoint}\'')
    try:
        query = parse_query(frame.body, max_limit)
    except ApicalypseError as exc:
        raise ApicalypseError(f'Query "{frame.name}": {exc.cause}') from None
    return SubQuery(entity, frame.name, suffix == "count", query)


def parse_multiquery(text: str, entities: Container[str], max_limit: int = 500) -> list[SubQuery]:
    """Parse a `POST /v4/multiquery` body, all or nothing: one bad sub-query rejects the request, as on IGDB."""
    frames = _frames(text)
    if not frames:
        raise ApicalypseError('Empty multiquery: send at least one \'query <endpoint> "<name>" { ... };\'')
    if len(frames) > MAX_SUBQUERIES:
        raise ApicalypseError(f"Too many queries: at most {MAX_SUBQUERIES} per multiquery, got {len(frames)}")
    seen: set[str] = set()
    for frame in frames:
        if frame.name in seen:
            raise ApicalypseError(f'Query "{frame.name}": duplicate name, each query needs its own')
        seen.add(frame.name)
    return [_subquery(frame, entities, max_limit) for frame in frames]


# --- Evaluation ----------------------------------------------------------------------------

_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}
_SORT_RANK: dict[str | None, int] = {"number": 0, "string": 1, "bool": 2}
_KINDS: dict[type, str | None] = {
    bool: "bool", int: "number", float: "number", str: "string", type(None): None, list: None,
}
_Groups = dict[str | None, set[Any]]


def _kind(value: Any) -> str | None:
    """Type family for comparisons, so that 1 never equals True or "1" (1 == 1.0 does)."""
    try:
        return _KINDS[type(value)]  # fast path for JSON types
    except KeyError:  # subclasses such as IntEnum; bool cannot be subclassed
        pass
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else None


def _grouped(values: Iterable[Scalar]) -> _Groups:
    """Values split into per-kind sets: O(1) membership even for long `id = (...)` lists."""
    groups: _Groups = {}
    for value in values:
        groups.setdefault(_kind(value), set()).add(value)
    return groups


def _contains(actual: Any, groups: _Groups) -> bool:
    """True when `actual` (or, for an array field, any of its items) is in `groups`."""
    if isinstance(actual, (list, tuple)):
        for item in actual:
            found = groups.get(_kind(item))  # never the None kind, so `item` is hashable
            if found is not None and item in found:
                return True
        return False
    found = groups.get(_kind(actual))
    return found is not None and actual in found


def _compile_comparison(cmp: Comparison) -> Predicate:
    field, op, value = cmp.field, cmp.op, cmp.value
    if value is None:
        if op == "=":
            return lambda r: r.get(field) is None
        return lambda r: r.get(field) is not None
    if op in ("=", "!="):
        if isinstance(value, ValueList) and value.match_all:
            wanted = [_grouped((v,)) for v in value.values]

            def hit(r: Mapping[str, Any]) -> bool:
                actual = r.get(field)
                return actual is not None and all(_contains(actual, g) for g in wanted)
        else:  # one value, or any of several
            groups = _grouped(value.values if isinstance(value, ValueList) else (value,))

            def hit(r: Mapping[str, Any]) -> bool:
                actual = r.get(field)
                return actual is not None and _contains(actual, groups)
        return hit if op == "=" else lambda r: not hit(r)
    compare, kind = _ORDERING[op], _kind(value)

    def ordered(r: Mapping[str, Any]) -> bool:
        actual = r.get(field)
        if isinstance(actual, (list, tuple)):
            return any(_kind(item) == kind and compare(item, value) for item in actual)
        return _kind(actual) == kind and compare(actual, value)
    return ordered


def _compile(expr: Expr) -> Predicate:
    if isinstance(expr, Comparison):
        return _compile_comparison(expr)
    if isinstance(expr, Not):
        inner = _compile(expr.operand)
        return lambda r: not inner(r)
    preds = tuple(_compile(e) for e in expr.operands)
    if isinstance(expr, And):
        def every(r: Mapping[str, Any]) -> bool:
            for pred in preds:
                if not pred(r):
                    return False
            return True
        return every

    def some(r: Mapping[str, Any]) -> bool:
        for pred in preds:
            if pred(r):
                return True
        return False
    return some


_COMPILED: dict[int, tuple[Expr, Predicate]] = {}


def compile_expr(expr: Expr) -> Predicate:
    """Build a closure once per Expr, so scanning a large catalogue skips the AST dispatch.

    Cached by identity (the entry keeps the Expr alive, so its id cannot be reused): value
    equality would conflate `x = 1` with `x = true`, which must not match alike.
    """
    entry = _COMPILED.get(id(expr))
    if entry is not None and entry[0] is expr:
        return entry[1]
    pred = _compile(expr)
    if len(_COMPILED) >= 256:
        _COMPILED.clear()
    _COMPILED[id(expr)] = (expr, pred)
    return pred


def matches(expr: Expr | None, record: Mapping[str, Any]) -> bool:
    """Whether `record` satisfies a where clause; no clause matches everything."""
    return expr is None or compile_expr(expr)(record)


def project(record: Mapping[str, Any], fields: tuple[str, ...] | None) -> dict[str, Any]:
    """Keep the requested fields (all for None); absent ones are omitted, as IGDB does."""
    if fields is None:
        return dict(record)
    return {f: record[f] for f in fields if f in record}


def _sorted(
    records: Iterable[Mapping[str, Any]], field: str, ascending: bool
) -> list[Mapping[str, Any]]:
    """Stable sort; null, missing and unorderable (array/object) values go last either way."""
    buckets: dict[int, list[Mapping[str, Any]]] = {}  # per kind, since 1 < "a" would raise
    missing: list[Mapping[str, Any]] = []
    for r in records:
        rank = _SORT_RANK.get(_kind(r.get(field)))
        (missing if rank is None else buckets.setdefault(rank, [])).append(r)
    result: list[Mapping[str, Any]] = []
    for rank in sorted(buckets, reverse=not ascending):
        result += sorted(buckets[rank], key=operator.itemgetter(field), reverse=not ascending)
    return result + missing


def apply_query(records: Iterable[Mapping[str, Any]], query: Query) -> list[dict[str, Any]]:
    """Filter with where, sort (stable; missing sort field last), then offset, limit, project."""
    selected: Iterable[Mapping[str, Any]] = records
    if query.where is not None:
        selected = filter(compile_expr(query.where), selected)
    if query.sort is not None:
        selected = _sorted(selected, *query.sort)
    window = islice(selected, query.offset, query.offset + query.limit)
    return [project(r, query.fields) for r in window]
