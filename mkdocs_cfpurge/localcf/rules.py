"""Cache Rules at the local edge: which rules match a request, and the cache key they give it.

The edge evaluates rule expressions on its own, independently of the product's reader
(plan/ruleexpr.py): it translates the subset of Cloudflare's Rules language it supports into a
Python expression, parses that with `ast` and interprets the tree node by node (never `eval`).
A mistake in one reader is then not repeated by the other, so a test can catch it. An
expression outside the subset is refused when the server starts, naming the rule.

What the edge models (shared/reference/cloudflare.md):
- eligibility: a matching rule with `cache: true` caches anything; without one, only the file
  extensions Cloudflare caches by default (not HTML);
- the cache key: query string (all, none, or listed parameters), device type, country,
  language, request headers and cookies, as the matching rules' `custom_key` says;
- purges: a `files` entry is looked up with the key of a request using Cloudflare's internal
  PURGE method, so a rule that cannot match it (`http.request.method eq "GET"`) gives its
  entries a key no `files` purge finds: the purge answers 200 and evicts nothing.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

# Cloudflare's default cached file extensions (no html, json or xml among them).
DEFAULT_CACHED = frozenset(
    {
        "7z", "apk", "avi", "avif", "bin", "bmp", "bz2", "class", "css", "csv", "dmg", "doc",
        "docx", "ejs", "eot", "eps", "exe", "flac", "gif", "gz", "ico", "iso", "jar", "jpeg",
        "jpg", "js", "mid", "midi", "mkv", "mp3", "mp4", "ogg", "otf", "pdf", "pict", "pls",
        "png", "ppt", "pptx", "ps", "rar", "svg", "svgz", "swf", "tar", "tif", "tiff", "ttf",
        "webm", "webp", "woff", "woff2", "xls", "xlsx", "zip", "zst",
    }
)  # fmt: skip
_FIELDS = {
    "http.host": "host",
    "http.request.method": "method",
    "http.request.uri.path": "path",
    "http.request.uri.query": "query",
    "http.request.uri": "uri",
    "http.request.full_uri": "full_uri",
    "http.request.uri.path.extension": "extension",
    "ssl": "ssl",
}
_WORDS = {
    "eq": "==",
    "==": "==",
    "ne": "!=",
    "!=": "!=",
    "and": "and",
    "&&": "and",
    "or": "or",
    "||": "or",
    "not": "not",
    "!": "not",
    "in": "in",
    "contains": "<<",  # interpreted as "the right side occurs in the left"
    "matches": ">>",  # a regular expression search
    "~": ">>",
    "wildcard": "%",  # case-insensitive, `*` only
    "true": "True",
    "false": "False",
    "(": "(",
    ")": ")",
    ",": ",",
}
_FUNCTIONS = frozenset({"starts_with", "ends_with", "lower"})
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|==|!=|&&|\|\||[(){},!~]|[A-Za-z_][A-Za-z0-9_.]*)')


class UnsupportedRule(ValueError):
    pass


def translate(expression: str) -> str:
    """The expression as Python source over the names of `_FIELDS`' values."""
    out: list[str] = []
    in_set = False
    at = 0
    while at < len(expression.rstrip()):
        match = _TOKEN.match(expression, at)
        if match is None:
            raise UnsupportedRule(f"cannot read {expression[at : at + 12]!r}")
        token, at = match.group(1), match.end()
        if token.startswith('"'):
            out.append(repr(re.sub(r"\\(.)", r"\1", token[1:-1])) + ("," if in_set else ""))
        elif token == "{":
            out.append("(")
            in_set = True
        elif token == "}":
            out.append(")")
            in_set = False
        elif token in _FIELDS:
            out.append(_FIELDS[token])
        elif token in _FUNCTIONS:
            out.append(token)
        elif token in _WORDS:
            out.append(_WORDS[token])
        else:
            raise UnsupportedRule(f"{token!r} is not supported by the local edge")
    return " ".join(out)


def _wildcard(subject: str, pattern: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, subject, re.IGNORECASE | re.DOTALL) is not None


class _Interpreter:
    """Evaluates the translated tree; any node outside the subset is refused up front."""

    def __init__(self, source: str) -> None:
        self.tree = ast.parse(source, mode="eval").body
        self._check(self.tree)

    def _check(self, node: ast.AST) -> None:
        allowed = (
            ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare, ast.Eq, ast.NotEq,
            ast.In, ast.BinOp, ast.LShift, ast.RShift, ast.Mod, ast.Call, ast.Name, ast.Load,
            ast.Constant, ast.Tuple,
        )  # fmt: skip
        if not isinstance(node, allowed):
            raise UnsupportedRule(f"{type(node).__name__} is not supported by the local edge")
        if isinstance(node, ast.Name) and node.id not in _FIELDS.values():
            raise UnsupportedRule(f"{node.id!r} is not supported by the local edge")
        if isinstance(node, ast.Compare) and len(node.ops) != 1:
            raise UnsupportedRule("chained comparisons are not supported by the local edge")
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
                raise UnsupportedRule("only starts_with, ends_with and lower are supported")
            children: Iterable[ast.AST] = node.args
        else:
            children = ast.iter_child_nodes(node)
        for child in children:
            self._check(child)

    def run(self, facts: Mapping[str, Any]) -> bool:
        return bool(self._eval(self.tree, facts))

    def _eval(self, node: ast.AST, facts: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.BoolOp):
            values = (self._eval(v, facts) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp):
            return not self._eval(node.operand, facts)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, facts)
            right = self._eval(node.comparators[0], facts)
            op = node.ops[0]
            return left == right if isinstance(op, ast.Eq) else (
                left != right if isinstance(op, ast.NotEq) else left in right
            )  # fmt: skip
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, facts), self._eval(node.right, facts)
            if isinstance(node.op, ast.LShift):
                return right in left
            if isinstance(node.op, ast.RShift):
                return re.search(right, left) is not None
            return _wildcard(left, right)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            args = [self._eval(arg, facts) for arg in node.args]
            if node.func.id == "lower":
                return args[0].lower()
            return args[0].startswith(args[1]) if node.func.id == "starts_with" else (
                args[0].endswith(args[1])
            )  # fmt: skip
        if isinstance(node, ast.Name):
            return facts[node.id]
        if isinstance(node, ast.Tuple):
            return tuple(self._eval(e, facts) for e in node.elts)
        assert isinstance(node, ast.Constant)
        return node.value


@dataclass(frozen=True)
class EdgeRule:
    id: str
    matches: Callable[[Mapping[str, Any]], bool]
    params: Mapping[str, Any]


def facts_of(scheme: str, host: str, path: str, query: str, method: str) -> dict[str, Any]:
    name = path.rsplit("/", 1)[-1]
    uri = path + (f"?{query}" if query else "")
    return {
        "host": host,
        "method": method,
        "path": path,
        "query": query,
        "uri": uri,
        "full_uri": f"{scheme}://{host}{uri}",
        "extension": name.rsplit(".", 1)[1].lower() if "." in name else "",
        "ssl": scheme == "https",
    }


@dataclass(frozen=True)
class Keying:
    """What the rules matching one request decide: eligible or not, and the key's parts."""

    eligible: bool
    rules: frozenset[str]  # ids of the matching rules that shape caching
    query: str
    variant: frozenset[tuple[str, str]]


class EdgeRules:
    """The zone's `http_request_cache_settings` ruleset, as the local edge applies it."""

    def __init__(self, ruleset: Mapping[str, Any]) -> None:
        self.rules: list[EdgeRule] = []
        for number, rule in enumerate(ruleset.get("rules") or [], 1):
            if not rule.get("enabled", True) or rule.get("action") != "set_cache_settings":
                continue
            rule_id = str(rule.get("id") or f"rule-{number}")
            try:
                interpreter = _Interpreter(translate(str(rule.get("expression", "true"))))
            except (UnsupportedRule, SyntaxError) as exc:
                raise UnsupportedRule(f"cache rule {rule_id}: {exc}") from None
            self.rules.append(
                EdgeRule(rule_id, interpreter.run, rule.get("action_parameters") or {})
            )

    def keying(
        self,
        scheme: str,
        host: str,
        path: str,
        query: str,
        headers: Iterable[tuple[str, str]],
        method: str,
    ) -> Keying:
        facts = facts_of(scheme, host, path, query, method)
        sent = {name.lower(): value for name, value in headers}
        cache: bool | None = None
        shaping: set[str] = set()
        custom: dict[str, Any] = {}
        for rule in self.rules:
            if not rule.matches(facts):
                continue
            if "cache" in rule.params:
                cache = bool(rule.params["cache"])
            key = (rule.params.get("cache_key") or {}).get("custom_key") or {}
            if rule.params.get("cache") is True or key:
                shaping.add(rule.id)
            custom.update(key)  # a later rule's key settings override an earlier one's
        eligible = cache if cache is not None else facts["extension"] in DEFAULT_CACHED
        variant = _variant(sent, custom, visitor=method != "PURGE")
        return Keying(eligible, frozenset(shaping), _query(query, custom), variant)


def _query(query: str, custom: Mapping[str, Any]) -> str:
    part = custom.get("query_string") or {}
    exclude, include = part.get("exclude") or {}, part.get("include") or {}
    if exclude.get("all"):
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    if include.get("list"):
        pairs = [(k, v) for k, v in pairs if k in include["list"]]
    elif exclude.get("list"):
        pairs = [(k, v) for k, v in pairs if k not in exclude["list"]]
    else:
        return query
    return urlencode(pairs)


def _variant(
    sent: Mapping[str, str], custom: Mapping[str, Any], *, visitor: bool
) -> frozenset[tuple[str, str]]:
    """The key parts the rules take from the request. A visitor always has a device type and a
    country (Cloudflare derives them); a purge names them in its headers, or matches none."""
    user = custom.get("user") or {}
    parts: dict[str, str] = {}
    if user.get("device_type"):
        parts["cf-device-type"] = sent.get("cf-device-type", "desktop" if visitor else "")
    if user.get("geo"):
        parts["cf-ipcountry"] = sent.get("cf-ipcountry", "XX" if visitor else "")
    if user.get("lang"):
        parts["accept-language"] = sent.get("accept-language", "")
    for name in (custom.get("header") or {}).get("include") or []:
        parts["header:" + name.lower()] = sent.get(name.lower(), "")
    cookies = dict(
        piece.strip().split("=", 1) for piece in sent.get("cookie", "").split(";") if "=" in piece
    )
    for name in (custom.get("cookie") or {}).get("include") or []:
        parts["cookie:" + name] = cookies.get(name, "")
    return frozenset(parts.items())


def read_ruleset(raw: bytes) -> dict[str, Any]:
    """A ruleset from JSON: the API's answer (`{"result": {...}}`) or the ruleset alone.

    ValueError (UnsupportedRule for an expression the edge cannot apply) names the problem.
    """
    data: Any = json.loads(raw)
    if isinstance(data, dict) and isinstance(data.get("result"), dict):
        data = data["result"]
    rules = data.get("rules", []) if isinstance(data, dict) else None
    if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
        raise ValueError("not a ruleset (a JSON object with a list of rule objects)")
    ruleset: dict[str, Any] = data
    EdgeRules(ruleset)
    return ruleset


def url_parts(url: str) -> tuple[str, str, str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.path or "/", parts.query
