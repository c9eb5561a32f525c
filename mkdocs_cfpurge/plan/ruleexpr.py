"""Cloudflare rule expressions, read conservatively: what a cache rule may match.

A Cache Rule's `expression` is written in Cloudflare's Rules language (wirefilter):
`(http.host eq "docs.example.com" and http.request.method eq "GET")`. This module parses the
whole language's shape (fields, functions, literals, sets, comparisons, `and`/`or`/`xor`/`not`)
and evaluates what it can for one request: the host, the method, the path (and what derives
from the URL). Everything else (headers, cookies, bot scores, lists, functions it does not know)
is *unknown*, and so is a whole expression it cannot parse. Evaluation is three-valued: True,
False, or None for "may match"; `and`/`or` follow Kleene's logic, so an unknown clause never
turns a sure answer into a wrong one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import unquote, urlsplit

Tri: TypeAlias = bool | None  # None: may be either
Value: TypeAlias = str | int | bool | None  # None: unknown

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<raw>r(?P<hashes>\#*)".*?"(?P=hashes))
    | (?P<ip>\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?)
    | (?P<range>\.\.)
    | (?P<number>-?\d+)
    | (?P<name>\$?[A-Za-z_][A-Za-z0-9_.]*)
    | (?P<op>==|!=|<=|>=|&&|\|\||\^\^|[()\[\]{},*<>!~&])
    )""",
    re.VERBOSE | re.DOTALL,
)
_COMPARE = frozenset(
    {
        "eq", "ne", "lt", "le", "gt", "ge", "==", "!=", "<", "<=", ">", ">=",
        "contains", "matches", "~", "wildcard", "strict", "in", "bitwise_and", "&",
    }
)  # fmt: skip
_EQUIVALENT = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "~": "matches"}
METHOD_FIELD = re.compile(r"\bhttp\.request\.method\b")


class ParseError(ValueError):
    pass


# --- the tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    indexed: bool = False  # `headers["x"][0]`: never known here


@dataclass(frozen=True)
class Literal:
    value: Value


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Members:
    """The right side of `in`: literals, integer ranges, or a named list (never known)."""

    values: frozenset[Value]
    ranges: tuple[tuple[int, int], ...] = ()
    named_list: bool = False


@dataclass(frozen=True)
class Compare:
    left: Node
    op: str
    right: Node | Members


@dataclass(frozen=True)
class Logic:
    op: str  # "and", "or", "xor"
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node: TypeAlias = Field | Literal | Call | Compare | Logic | Not


# --- parsing -------------------------------------------------------------------------------


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise ParseError(f"unexpected {text[at : at + 10]!r}")
        kind = next(k for k in ("string", "raw", "ip", "range", "number", "name", "op") if match[k])
        tokens.append((kind, match[kind]))
        at = match.end()
    return tokens


def _string(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body)  # the language escapes only `"` and `\`


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        at = self.at + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ParseError("unexpected end")
        self.at += 1
        return token

    def accept(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token[1] in words:
            self.at += 1
            return token[1]
        return None

    def expect(self, word: str) -> None:
        if self.accept(word) is None:
            raise ParseError(f"expected {word!r}")

    def parse(self) -> Node:
        node = self.logic(0)
        if self.peek() is not None:
            raise ParseError(f"unexpected {self.peek()}")
        return node

    # Loosest first: `a or b and c` is `a or (b and c)`.
    _LEVELS = (("or", "||"), ("xor", "^^"), ("and", "&&"))

    def logic(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        parts = [self.logic(level + 1)]
        while self.accept(*self._LEVELS[level]) is not None:
            parts.append(self.logic(level + 1))
        return parts[0] if len(parts) == 1 else Logic(self._LEVELS[level][0], tuple(parts))

    def unary(self) -> Node:
        if self.accept("not", "!") is not None:
            return Not(self.unary())
        if self.accept("(") is not None:
            node = self.logic(0)
            self.expect(")")
            return node
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        token = self.peek()
        if token is None or token[1] not in _COMPARE:
            return left
        op = self.take()[1]
        if op == "strict":
            self.expect("wildcard")
            op = "strict wildcard"
        op = _EQUIVALENT.get(op, op)
        right: Node | Members = self.members() if op == "in" else self.operand()
        return Compare(left, op, right)

    def members(self) -> Members:
        token = self.peek()
        if token is not None and token[0] == "name" and token[1].startswith("$"):
            self.take()
            return Members(frozenset(), named_list=True)
        self.expect("{")
        values: set[Value] = set()
        ranges: list[tuple[int, int]] = []
        while self.accept("}") is None:
            value = self.literal()
            if self.accept("..") is not None:
                end = self.literal()
                if isinstance(value.value, int) and isinstance(end.value, int):
                    ranges.append((value.value, end.value))
                continue
            values.add(value.value)
        return Members(frozenset(values), tuple(ranges))

    def literal(self) -> Literal:
        kind, text = self.take()
        if kind == "string":
            return Literal(_string(text))
        if kind == "raw":
            hashes = len(text) - len(text.lstrip("r#")) - 1
            return Literal(text[2 + hashes : len(text) - 1 - hashes])
        if kind == "number":
            return Literal(int(text))
        if kind == "ip":
            return Literal(None)  # addresses are never known here
        if kind == "name" and text in ("true", "false"):
            return Literal(text == "true")
        raise ParseError(f"unexpected {text!r} in a set")

    def operand(self) -> Node:
        token = self.peek()
        if token is None:
            raise ParseError("unexpected end")
        kind, text = token
        if kind != "name" or text in ("true", "false"):
            return self.literal()
        self.take()
        if text.startswith("$"):
            return Literal(None)
        if self.accept("(") is not None:
            args: list[Node] = []
            while self.accept(")") is None:
                args.append(self.logic(0))
                self.accept(",")
            return self.indexes(Call(text, tuple(args)))
        return self.indexes(Field(text))

    def indexes(self, node: Node) -> Node:
        indexed = False
        while self.accept("[") is not None:
            if self.accept("*") is None:
                self.literal()
            self.expect("]")
            indexed = True
        if indexed:
            return Field(node.name if isinstance(node, Field) else "?", indexed=True)
        return node


def parse(expression: str) -> Node:
    """The expression's tree; ParseError when it is not one this module can read."""
    try:
        return _Parser(expression).parse()
    except (ParseError, re.error, ValueError, IndexError) as exc:
        raise ParseError(str(exc)) from None


# --- evaluation ----------------------------------------------------------------------------

Facts = Mapping[str, Value]


@functools.lru_cache(maxsize=8192)  # every rule asks about the same URLs; read-only results
def request_facts(url: str, method: str) -> dict[str, Value]:
    """What a request for `url` with `method` shows the rules this module understands."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path or "/"
    query = parts.query
    uri = path + (f"?{query}" if query else "")
    name = path.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[1].lower() if "." in name else ""
    facts: dict[str, Value] = {
        "http.host": host,
        "http.request.method": method,
        "http.request.uri.path": path,
        "http.request.uri.query": query,
        "http.request.uri": uri,
        "http.request.full_uri": f"{parts.scheme}://{parts.netloc}{uri}",
        "http.request.uri.path.extension": extension,
        "ssl": parts.scheme == "https",
    }
    # `raw.` fields are the same values before Cloudflare's URL normalisation: ours are raw.
    facts.update({"raw." + name: value for name, value in list(facts.items())})
    return facts


def _text(value: Value) -> str | None:
    return value if isinstance(value, str) else None


def _call(node: Call, facts: Facts) -> Value:
    args = [value_of(arg, facts) for arg in node.args]
    if any(arg is None for arg in args):
        return None
    texts = [_text(arg) for arg in args]
    name = node.name
    if name in ("lower", "upper", "url_decode", "len") and len(args) == 1 and texts[0] is not None:
        text = texts[0]
        if name == "len":
            return len(text)
        if name == "url_decode":
            return unquote(text)
        return text.lower() if name == "lower" else text.upper()
    if name in ("starts_with", "ends_with") and len(texts) == 2 and None not in texts:
        subject, affix = str(texts[0]), str(texts[1])
        return subject.startswith(affix) if name == "starts_with" else subject.endswith(affix)
    if name == "concat" and None not in texts:
        return "".join(str(text) for text in texts)
    return None  # any(), all(), lookup_json_string(), regex_replace()... not known here


def value_of(node: Node, facts: Facts) -> Value:
    """An operand's value for the request (None when unknown)."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Field):
        return None if node.indexed else facts.get(node.name)
    if isinstance(node, Call):
        return _call(node, facts)
    return evaluate(node, facts)


def _wildcard(subject: str, pattern: str, case_sensitive: bool) -> bool:
    # Only `*` is special in Cloudflare's wildcard operator; it must match the whole subject.
    regex = "".join(".*" if ch == "*" else re.escape(ch) for ch in pattern)
    flags = re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE
    return re.fullmatch(regex, subject, flags) is not None


def _compare(op: str, left: Value, right: Value) -> Tri:
    if left is None or right is None:
        return None
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
        ordered: dict[str, Callable[[int, int], bool]] = {
            "lt": lambda a, b: a < b,
            "le": lambda a, b: a <= b,
            "gt": lambda a, b: a > b,
            "ge": lambda a, b: a >= b,
        }
        if op in ordered:
            return ordered[op](left, right)
    if not (isinstance(left, str) and isinstance(right, str)):
        return None
    if op == "contains":
        return right in left
    if op == "matches":
        try:
            # Cloudflare uses RE2; Python's engine reads the common subset the same way.
            return re.search(right, left) is not None
        except re.error:
            return None
    if op in ("wildcard", "strict wildcard"):
        return _wildcard(left, right, case_sensitive=op == "strict wildcard")
    return None


def _members(left: Value, members: Members) -> Tri:
    if left is None or members.named_list:
        return None
    if None in members.values:
        return True if left in members.values else None
    if left in members.values:
        return True
    return isinstance(left, int) and any(low <= left <= high for low, high in members.ranges)


def evaluate(node: Node, facts: Facts) -> Tri:
    """Whether the expression matches the request: True, False, or None (may match)."""
    if isinstance(node, Logic):
        results = [evaluate(part, facts) for part in node.parts]
        if node.op == "and":
            return False if False in results else (None if None in results else True)
        if node.op == "or":
            return True if True in results else (None if None in results else False)
        if None in results:
            return None
        return sum(bool(r) for r in results) % 2 == 1  # xor
    if isinstance(node, Not):
        inner = evaluate(node.part, facts)
        return None if inner is None else not inner
    if isinstance(node, Compare):
        left = value_of(node.left, facts)
        if isinstance(node.right, Members):
            return _members(left, node.right)
        return _compare(node.op, left, value_of(node.right, facts))
    value = value_of(node, facts)
    return value if isinstance(value, bool) else None


@dataclass(frozen=True)
class Expression:
    """A rule's expression, parsed once; `tree` None when it could not be read at all."""

    text: str
    tree: Node | None
    mentions_method: bool

    @classmethod
    def read(cls, text: str) -> Expression:
        try:
            tree: Node | None = parse(text)
        except ParseError:
            tree = None
        return cls(text, tree, METHOD_FIELD.search(text) is not None)

    def matches(self, url: str, method: str) -> Tri:
        if self.tree is None:
            return None
        return evaluate(self.tree, request_facts(url, method))
