"""WeChat template keyword value types: what WeChat accepts for each, and how to make a value fit.

A keyword's name carries its type followed by its index (``thing3``, ``amount2``,
``character_string1``). WeChat rejects a send whose value breaks its type's rule with errcode
47003. Both the renderer (to fit values) and the sandbox (to reject like WeChat) use this table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

ELLIPSIS = "…"
_KEY = re.compile(r"^(?P<type>[a-z_]+?)(?P<index>\d+)$")
_CJK = re.compile(r"[\u4e00-\u9fff]")


class ValueType(StrEnum):
    THING = "thing"
    NUMBER = "number"
    LETTER = "letter"
    SYMBOL = "symbol"
    CHARACTER_STRING = "character_string"
    TIME = "time"
    DATE = "date"
    AMOUNT = "amount"
    PHONE_NUMBER = "phone_number"
    CAR_NUMBER = "car_number"
    NAME = "name"
    PHRASE = "phrase"


@dataclass(frozen=True)
class Rule:
    max_length: int
    pattern: re.Pattern[str] | None = None
    truncatable: bool = False
    """Free text that may be shortened with an ellipsis instead of being rejected."""


_TIME = (
    r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?|\d{4}年\d{1,2}月\d{1,2}日( \d{2}:\d{2}(:\d{2})?)?|\d{2}:\d{2}"
)
RULES: dict[ValueType, Rule] = {
    ValueType.THING: Rule(20, truncatable=True),
    ValueType.NUMBER: Rule(32, re.compile(r"^-?\d+(\.\d+)?$")),
    ValueType.LETTER: Rule(32, re.compile(r"^[A-Za-z]+$")),
    ValueType.SYMBOL: Rule(5, re.compile(r"^[^\w\s]+$")),
    ValueType.CHARACTER_STRING: Rule(32, re.compile(r"^[\x21-\x7e]+$")),
    ValueType.TIME: Rule(32, re.compile(f"^({_TIME})$")),
    ValueType.DATE: Rule(32, re.compile(f"^({_TIME})$")),
    ValueType.AMOUNT: Rule(14, re.compile(r"^[¥￥$]?\d{1,10}(\.\d{1,2})?元?$")),
    ValueType.PHONE_NUMBER: Rule(17, re.compile(r"^\+?[\d-]+$")),
    ValueType.CAR_NUMBER: Rule(8),
    ValueType.NAME: Rule(20, truncatable=True),
    ValueType.PHRASE: Rule(5, re.compile(r"^[\u4e00-\u9fff]+$")),
}


def value_type(keyword: str) -> ValueType | None:
    """The type a keyword name declares, or None for untyped legacy keys (``first``, ``remark``)."""
    match = _KEY.match(keyword)
    if match is None:
        return None
    try:
        return ValueType(match["type"])
    except ValueError:
        return None


def _max_length(kind: ValueType, value: str) -> int:
    if kind is ValueType.NAME and _CJK.search(value):
        return 10
    return RULES[kind].max_length


def problem(keyword: str, value: str) -> str | None:
    """Why WeChat would reject ``value`` for ``keyword`` (its 47003), or None when it is fine."""
    kind = value_type(keyword)
    if kind is None:
        return None if len(value) <= 200 else f"{keyword}: longer than 200 characters"
    if not value:
        return f"{keyword}: empty value"
    limit = _max_length(kind, value)
    if len(value) > limit:
        return f"{keyword}: {kind.value} allows at most {limit} characters, got {len(value)}"
    rule = RULES[kind]
    if rule.pattern is not None and not rule.pattern.match(value):
        return f"{keyword}: {value!r} is not a valid {kind.value}"
    return None


_KEEP: dict[ValueType, re.Pattern[str]] = {
    ValueType.CHARACTER_STRING: re.compile(r"[^\x21-\x7e]"),
    ValueType.NUMBER: re.compile(r"[^\d.]"),
    ValueType.LETTER: re.compile(r"[^A-Za-z]"),
    ValueType.PHONE_NUMBER: re.compile(r"[^\d+-]"),
    ValueType.PHRASE: re.compile(r"[^\u4e00-\u9fff]"),
}
_EMPTY = {ValueType.PHRASE: "无", ValueType.LETTER: "NA", ValueType.NUMBER: "0", ValueType.PHONE_NUMBER: "0"}


def fit(keyword: str, value: str) -> str:
    """Make ``value`` acceptable for ``keyword``'s type where that can be done without lying:
    free text is shortened with an ellipsis, characters a type does not allow are dropped and the
    rest cut to length. Times and amounts are left alone: the renderer formats them right."""
    return _fit(value_type(keyword), value)


def fitter(keyword: str) -> Callable[[str], str]:
    """:func:`fit` for one keyword, its type looked up once (render plans keep it)."""
    return partial(_fit, value_type(keyword))


def _fit(kind: ValueType | None, value: str) -> str:
    if kind is None:
        return value[:200]
    if kind in _KEEP:
        value = _KEEP[kind].sub("", value)
        if kind is ValueType.NUMBER:
            value = value if RULES[kind].pattern.match(value) else value.replace(".", "")  # type: ignore[union-attr]
        if not RULES[kind].pattern.match(value):  # type: ignore[union-attr]
            value = _EMPTY.get(kind, "-")
    limit = _max_length(kind, value)
    if len(value) <= limit:
        return value
    if RULES[kind].truncatable:
        return value[: limit - 1] + ELLIPSIS
    return value[:limit]
