"""The oslo.policy rule language: check strings parsed once into a tree of
checks, then evaluated many times.

Grammar, as operators write it in policy YAML files::

    ""  "@"            always passes
    "!"                never passes
    role:NAME          the credentials hold role NAME (case-insensitive)
    rule:NAME          the named rule, looked up in the enforcer's table
    KEY:VALUE          credential KEY equals VALUE, where VALUE is a literal
                       (all, 'quoted', True) or a target substitution such
                       as %(project_id)s or %(target.user.domain_id)s
    'LITERAL':%(key)s  the target's key equals LITERAL
    not X, X and Y, X or Y, ( ... )    with not > and > or

Two deliberate differences from oslo.policy, both failing closed: a check
whose credential or target value is ``None`` fails (oslo compares the
strings ``"None" == "None"`` and passes), and text oslo cannot parse is an
``Invalid`` error naming the rule instead of a logged, silent deny.
"""

from __future__ import annotations

import ast
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any

from loom.errors import Invalid

# Evaluation signature shared by every check: credentials (normalised by the
# enforcer: lower-case roles in a frozenset), the target, the table that
# ``rule:`` references resolve through, and the rule names being evaluated
# (the recursion guard).
Credentials = Mapping[str, Any]
Target = Mapping[str, Any]
RuleTable = Mapping[str, "Check"]
Active = tuple[str, ...]

_MULTI_VALUED = (list, tuple, set, frozenset)
_MISSING = object()
# Deeper nesting than this is not a policy anyone wrote by hand.
_MAX_NESTING = 64
# Checks oslo.policy sends to a remote server; Loom does not call out.
_UNSUPPORTED_KINDS = frozenset({"http", "https"})


class Check(ABC):
    """One node of a parsed rule."""

    __slots__ = ()

    @abstractmethod
    def evaluate(self, creds: Credentials, target: Target, rules: RuleTable, active: Active) -> bool:
        """Whether ``creds`` may act on ``target``; ``active`` names the rules
        already being evaluated, so a rule that refers back to one fails."""

    def references(self) -> Iterator[str]:
        """Names of the rules this check refers to with ``rule:``."""
        return iter(())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"


class TrueCheck(Check):
    """``@`` or the empty rule: always passes."""

    __slots__ = ()

    def evaluate(self, creds: Credentials, target: Target, rules: RuleTable, active: Active) -> bool:
        return True

    def __str__(self) -> str:
        return "@"


class FalseCheck(Check):
    """``!``: never passes."""

    __slots__ = ()

    def evaluate(self, creds: Credentials, target: Target, rules: RuleTable, active: Active) -> bool:
        return False

    def __str__(self) -> str:
        return "!"


# --- values: the right-hand side of ``KEY:VALUE`` ---------------------------


class _Value(ABC):
    """A check's expected value, resolved against the target."""

    __slots__ = ()

    @abstractmethod
    def resolve(self, target: Target) -> str | None:
        """The value as a string, or None when the target lacks it."""


class _Literal(_Value):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def resolve(self, target: Target) -> str | None:
        return self.text

    def __str__(self) -> str:
        return self.text


class _TargetRef(_Value):
    """``%(key)s``: the flat key if the target has it, else a path through
    nested dicts (``target.user.domain_id``)."""

    __slots__ = ("key", "path")

    def __init__(self, key: str) -> None:
        self.key = key
        self.path = tuple(key.split(".")) if "." in key else ()

    def resolve(self, target: Target) -> str | None:
        value = target.get(self.key, _MISSING)
        if value is _MISSING and self.path:
            value = target
            for part in self.path:
                if not isinstance(value, Mapping):
                    return None
                value = value.get(part, _MISSING)
                if value is _MISSING:
                    return None
        if value is _MISSING or value is None:
            return None
        return value if isinstance(value, str) else str(value)

    def __str__(self) -> str:
        return f"%({self.key})s"


class _Template(_Value):
    """Literal text mixed with substitutions (``prefix-%(key)s``)."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[_Value, ...]) -> None:
        self.parts = parts

    def resolve(self, target: Target) -> str | None:
        pieces = []
        for part in self.parts:
            piece = part.resolve(target)
            if piece is None:
                return None
            pieces.append(piece)
        return "".join(pieces)

    def __str__(self) -> str:
        return "".join(str(p).replace("%", "%%") if isinstance(p, _Literal) else str(p) for p in self.parts)


_SUBSTITUTION = re.compile(r"%(?:\((?P<key>[^()]*)\)s|(?P<percent>%))")


def _parse_value(text: str) -> _Value:
    if len(text) >= 2 and text[0] in "'\"" and text[-1] == text[0]:
        return _Literal(text[1:-1])
    parts: list[_Value] = []
    pos = 0
    for m in _SUBSTITUTION.finditer(text):
        literal = text[pos : m.start()]
        if "%" in literal:
            raise _ParseError(f"unsupported substitution in {text!r} (use %(key)s)")
        if literal:
            parts.append(_Literal(literal))
        if m.group("percent"):
            parts.append(_Literal("%"))
        elif not m.group("key"):
            raise _ParseError(f"empty substitution in {text!r}")
        else:
            parts.append(_TargetRef(m.group("key")))
        pos = m.end()
    tail = text[pos:]
    if "%" in tail:
        raise _ParseError(f"unsupported substitution in {text!r} (use %(key)s)")
    if tail:
        parts.append(_Literal(tail))
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, _Literal) for p in parts):
        return _Literal("".join(str(p) for p in parts))
    return _Template(tuple(parts))


# --- leaf checks ------------------------------------------------------------


class RoleCheck(Check):
    """``role:NAME``: the credentials hold the role, whatever its case."""

    __slots__ = ("_role", "_value")

    def __init__(self, value: str) -> None:
        self._value = _parse_value(value)
        self._role = self._value.text.lower() if isinstance(self._value, _Literal) else None

    def evaluate(self, creds: Credentials, target: Target, rules: RuleTable, active: Active) -> bool:
        role = self._role
        if role is None:
            resolved = self._value.resolve(target)
            if resolved is None:
                return False
            role = resolved.lower()
        return role in creds.get("roles", ())

    def __str__(self) -> str:
        return f"role:{self._value}"


class RuleCheck(Check):
    """``rule:NAME``: another rule of the table; unknown or recursive, it fails."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def evaluate(self, creds: Credentials, target: Target, rules: RuleTable, active: Active) -> bool:
        name = self.name
        if name in active:
            return False
        check = rules.get(name)
        if check is None:
            return False
        return check.evaluate(creds, target, rules, (*active, name))

    def references(self) -> Iterator[str]:
        yield self.name

    def __str__(self) -> str:
        return f"rule:{self.name}"


class GenericCheck(Check):
    """``KEY:VALUE``: credential KEY (a dotted path into nested credentials;
    any element of a list matches) equals VALUE. When KEY is itself a literal
    (``'member':%(role.name)s``, ``True:%(enabled)s``) the target value is
    compared with it instead."""

    __slots__ = ("_key", "_literal", "_path", "_value")

    def __init__(self, key: str, value: str) -> None:
        self._key = key
        self._value = _parse_value(value)
        self._literal = _key_literal(key)
        self._path = tuple(key.split("."))

    def evaluate(self, creds: Credentials, target: Target, rules: RuleTable, active: Active) -> bool:
        expected = self._value.resolve(target)
        if expected is None:
            return False
        if self._literal is not None:
            return self._literal == expected
        path = self._path
        if len(path) == 1:
            return _matches(creds.get(path[0]), expected)
        return _find(creds, path, expected)

    def __str__(self) -> str:
        return f"{self._key}:{self._value}"


def _key_literal(key: str) -> str | None:
    """A check key that is a Python literal, as a string (oslo's reverse form)."""
    try:
        return str(ast.literal_eval(key))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _matches(value: Any, expected: str) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value == expected
    if isinstance(value, _MULTI_VALUED):
        return any(_matches(item, expected) for item in value)
    return str(value) == expected


def _find(node: Any, path: tuple[str, ...], expected: str) -> bool:
    """oslo's walk through nested credentials: lists fan out."""
    if not path:
        return _matches(node, expected)
    if isinstance(node, _MULTI_VALUED):
        return any(_find(item, path, expected) for item in node)
    if not isinstance(node, Mapping):
        return False
    child = node.get(path[0], _MISSING)
    if child is _MISSING:
        return False
    return _find(child, path[1:], expected)


# --- operators --------------------------------------------------------------


class NotCheck(Check):
    """``not X``."""

    __slots__ = ("check",)

    def __init__(self, check: Check) -> None:
        self.check = check

    def evaluate(self, creds: Credentials, target: Target, rules: RuleTable, active: Active) -> bool:
        return not self.check.evaluate(creds, target, rules, active)

    def references(self) -> Iterator[str]:
        return self.check.references()

    def __str__(self) -> str:
        return f"not {self.check}"


class AndCheck(Check):
    """``X and Y and ...``: every check passes (stops at the first failure)."""

    __slots__ = ("checks",)

    def __init__(self, checks: tuple[Check, ...]) -> None:
        self.checks = checks

    def evaluate(self, creds: Credentials, target: Target, rules: RuleTable, active: Active) -> bool:
        for check in self.checks:
            if not check.evaluate(creds, target, rules, active):
                return False
        return True

    def references(self) -> Iterator[str]:
        for check in self.checks:
            yield from check.references()

    def __str__(self) -> str:
        return "(" + " and ".join(str(c) for c in self.checks) + ")"


class OrCheck(Check):
    """``X or Y or ...``: some check passes (stops at the first success)."""

    __slots__ = ("checks",)

    def __init__(self, checks: tuple[Check, ...]) -> None:
        self.checks = checks

    def evaluate(self, creds: Credentials, target: Target, rules: RuleTable, active: Active) -> bool:
        for check in self.checks:
            if check.evaluate(creds, target, rules, active):
                return True
        return False

    def references(self) -> Iterator[str]:
        for check in self.checks:
            yield from check.references()

    def __str__(self) -> str:
        return "(" + " or ".join(str(c) for c in self.checks) + ")"


# --- parsing ----------------------------------------------------------------


class _ParseError(Exception):
    """Why a check string is not valid; ``parse`` adds the rule's name."""


_KEYWORDS = frozenset({"and", "or", "not"})
_TRUE = TrueCheck()
_FALSE = FalseCheck()


def parse(check_str: str, rule_name: str = "<check>") -> Check:
    """Parse ``check_str`` into a check tree.

    Raises ``Invalid`` naming ``rule_name`` and the text when it is not a
    valid rule.
    """
    if not isinstance(check_str, str):
        raise Invalid(
            f"Policy rule {rule_name!r} must be a string, not {type(check_str).__name__}",
            rule=rule_name,
        )
    try:
        tokens = _tokenize(check_str)
        if not tokens:
            return _TRUE
        return _Parser(tokens).parse()
    except _ParseError as exc:
        raise Invalid(
            f"Invalid policy rule {rule_name!r}: {exc}: {check_str!r}",
            rule=rule_name,
            check_str=check_str,
        ) from None


def _tokenize(text: str) -> list[str]:
    """Words split on white space (a quoted key or value may hold spaces),
    with leading ``(`` and trailing ``)`` split off as oslo does; the parens
    of ``%(key)s`` stay inside their word."""
    tokens: list[str] = []
    for word in _words(text):
        stripped = word.lstrip("(")
        tokens.extend("(" * (len(word) - len(stripped)))
        body = stripped.rstrip(")")
        if body:
            tokens.append(body.lower() if body.lower() in _KEYWORDS else body)
        tokens.extend(")" * (len(stripped) - len(body)))
    return tokens


def _words(text: str) -> Iterator[str]:
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        while i < n and not text[i].isspace():
            char = text[i]
            # A quote opens a quoted span only where a key or value begins.
            if char in "'\"" and (i == start or text[i - 1] in ":("):
                end = text.find(char, i + 1)
                if end < 0:
                    raise _ParseError("unterminated quote")
                i = end + 1
            else:
                i += 1
        yield text[start:i]


class _Parser:
    """Recursive descent with oslo's precedence: not > and > or."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def parse(self) -> Check:
        check = self.or_expr()
        if self.pos < len(self.tokens):
            raise _ParseError(f"unexpected {self.tokens[self.pos]!r}")
        return check

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def or_expr(self) -> Check:
        checks = [self.and_expr()]
        while self.peek() == "or":
            self.pos += 1
            checks.append(self.and_expr())
        return checks[0] if len(checks) == 1 else OrCheck(tuple(checks))

    def and_expr(self) -> Check:
        checks = [self.not_expr()]
        while self.peek() == "and":
            self.pos += 1
            checks.append(self.not_expr())
        return checks[0] if len(checks) == 1 else AndCheck(tuple(checks))

    def not_expr(self) -> Check:
        if self.peek() == "not":
            self.pos += 1
            return NotCheck(self.nested(self.not_expr))
        return self.atom()

    def nested(self, parse: Any) -> Check:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise _ParseError("nested too deeply")
        try:
            check: Check = parse()
        finally:
            self.depth -= 1
        return check

    def atom(self) -> Check:
        token = self.peek()
        if token is None:
            raise _ParseError("unexpected end of rule")
        self.pos += 1
        if token == "(":
            check = self.nested(self.or_expr)
            if self.peek() != ")":
                raise _ParseError("missing ')'")
            self.pos += 1
            return check
        if token in (")", "and", "or"):
            raise _ParseError(f"unexpected {token!r}")
        return _parse_check(token)


def _parse_check(token: str) -> Check:
    if token == "@":
        return _TRUE
    if token == "!":
        return _FALSE
    kind, match = _split_check(token)
    if kind in _UNSUPPORTED_KINDS:
        raise _ParseError(f"remote {kind} checks are not supported")
    if kind == "rule":
        return RuleCheck(match)
    if kind == "role":
        return RoleCheck(match)
    return GenericCheck(kind, match)


def _split_check(token: str) -> tuple[str, str]:
    if token[0] in "'\"":
        end = token.find(token[0], 1)
        kind, rest = token[: end + 1], token[end + 1 :]
        if not rest.startswith(":"):
            raise _ParseError(f"expected KIND:VALUE, got {token!r}")
        match = rest[1:]
    else:
        kind, colon, match = token.partition(":")
        if not colon:
            raise _ParseError(f"expected KIND:VALUE, got {token!r}")
    if not kind or not match:
        raise _ParseError(f"expected KIND:VALUE, got {token!r}")
    return kind, match
