"""Nova's extra-spec requirement language, matched against a host value:

``"= 4"`` (at least, numerically), ``"== 4"``, ``"!= 4"``, ``">= 4"``,
``"<= 4"`` (numeric); ``"s== x"``, ``"s!= x"``, ``"s< x"``, ``"s<= x"``,
``"s> x"``, ``"s>= x"`` (string); ``"<in> x"`` (substring);
``"<all-in> a b"`` (every word in a list); ``"<or> a <or> b"`` (one of);
anything else is compared as a plain string.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any


def _number(op: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    return lambda have, want: op(float(have), float(want))


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": _number(operator.ge),
    "==": _number(operator.eq),
    "!=": _number(operator.ne),
    ">=": _number(operator.ge),
    "<=": _number(operator.le),
    "s==": operator.eq,
    "s!=": operator.ne,
    "s<": operator.lt,
    "s<=": operator.le,
    "s>": operator.gt,
    "s>=": operator.ge,
    "<in>": lambda have, want: want in have,
    "<all-in>": lambda have, words: all(w in have for w in words),
}


def match(value: Any, requirement: str) -> bool:
    """Whether the host's ``value`` meets ``requirement``."""
    words = requirement.split()
    op = words.pop(0) if words else None
    if op != "<or>" and op not in OPERATORS:
        return bool(value == requirement)
    if value is None or not words:
        return False
    if op == "<or>":
        # "<or> a <or> b": every other word is a choice.
        return value in words[::2]
    try:
        return OPERATORS[op](value, words if op == "<all-in>" else words[0])
    except (TypeError, ValueError):
        return False
