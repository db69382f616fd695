"""WeChat template keyword value types: what WeChat accepts for each, and how to make a value fit.

A keyword's name carries its type followed by its index (``thing3``, ``amount2``,
``character_string1``). WeChat rejects a send whose value breaks its type's rule with errcode
47003. Both the renderer (to fit values) and the sandbox (to reject like WeChat) use this table.

Since 2023-05-04 the Official Account shows template messages by stricter rules (《关于规范公众号模板
消息的再次公告》, https://developers.weixin.qq.com/community/develop/doc/000a2ae286cdc0f41a8face4c51801):
``first`` and ``remark`` are no longer shown, colours and emoji are removed, and each field shows
at most 20 characters and nothing after a line break; WeChat cuts the rest without a word. Values
are therefore cleaned before they are sent (line breaks folded into a space, emoji and invisible
characters removed) and cut to the channel's limit with a visible ellipsis where the type allows.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from channels.base import ChannelName

ELLIPSIS = "…"
OA_FIELD_LIMIT = 20
"""what an Official Account template message shows of each field (2023 rules)"""
UNTYPED_LIMIT = 200
_BREAKS = re.compile(r"[\r\n\t\v\f\u2028\u2029\x85]+")
_SPACES = re.compile(r" {2,}")
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


def _removed(char: str) -> bool:
    """Emoji and other pictographs (removed by WeChat's 2023 rules), their modifiers and joiners,
    and invisible control or format characters; letters of every script are kept."""
    code, category = ord(char), unicodedata.category(char)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Me") or 0xFE00 <= code <= 0xFE0F:
        return True
    return category in ("So", "Sk", "Sm") and (code > 0xFFFF or 0x2190 <= code <= 0x2BFF)


def clean(value: str) -> str:
    """``value`` as WeChat can show it: line breaks folded into one space, emoji and invisible
    characters removed, spaces collapsed and trimmed."""
    folded = _BREAKS.sub(" ", value)
    kept = "".join(char for char in folded if not _removed(char))
    return _SPACES.sub(" ", kept).strip()


def shown(value: str, channel: ChannelName) -> str:
    """What the person sees of a value WeChat accepted: on the Official Account, nothing after a
    line break and at most 20 characters (2023 rules); the Mini Program refuses what it would cut."""
    if channel is not ChannelName.WECHAT_OA:
        return value
    return value.splitlines()[0][:OA_FIELD_LIMIT] if value else value


def value_type(keyword: str) -> ValueType | None:
    """The type a keyword name declares, or None for untyped legacy keys (``first``, ``remark``)."""
    match = _KEY.match(keyword)
    if match is None:
        return None
    try:
        return ValueType(match["type"])
    except ValueError:
        return None


def _max_length(kind: ValueType | None, value: str, channel: ChannelName) -> int:
    if kind is None:
        limit = UNTYPED_LIMIT
    elif kind is ValueType.NAME and _CJK.search(value):
        limit = 10
    else:
        limit = RULES[kind].max_length
    return min(limit, OA_FIELD_LIMIT) if channel is ChannelName.WECHAT_OA else limit


def problem(keyword: str, value: str, channel: ChannelName = ChannelName.WECHAT_MP) -> str | None:
    """Why ``value`` does not fit ``keyword`` (WeChat's 47003 on the Mini Program; on the Official
    Account, what it would cut), or None when it is fine."""
    kind = value_type(keyword)
    limit = _max_length(kind, value, channel)
    what = "the Official Account shows" if channel is ChannelName.WECHAT_OA else "allows"
    if kind is None:
        return None if len(value) <= limit else f"{keyword}: {what} at most {limit} characters"
    if not value:
        return f"{keyword}: empty value"
    if len(value) > limit:
        return f"{keyword}: {kind.value} {what} at most {limit} characters, got {len(value)}"
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


def fit(keyword: str, value: str, channel: ChannelName = ChannelName.WECHAT_MP) -> str:
    """Make ``value`` acceptable for ``keyword``'s type on ``channel`` where that can be done
    without lying: line breaks folded and emoji removed (:func:`clean`), free text shortened with
    an ellipsis, characters a type does not allow dropped and the rest cut to length (20 on the
    Official Account). Times and amounts are left alone: the renderer formats them right."""
    return _fit(value_type(keyword), channel, value)


def fitter(keyword: str, channel: ChannelName = ChannelName.WECHAT_MP) -> Callable[[str], str]:
    """:func:`fit` for one keyword, its type looked up once (render plans keep it)."""
    return partial(_fit, value_type(keyword), channel)


def _fit(kind: ValueType | None, channel: ChannelName, value: str) -> str:
    value = clean(value)
    if kind in _KEEP:
        value = _KEEP[kind].sub("", value)
        if kind is ValueType.NUMBER:
            value = value if RULES[kind].pattern.match(value) else value.replace(".", "")  # type: ignore[union-attr]
        if not RULES[kind].pattern.match(value):  # type: ignore[union-attr]
            value = _EMPTY.get(kind, "-")
    elif kind is not None and not value:
        value = "-"
    limit = _max_length(kind, value, channel)
    if len(value) <= limit:
        return value
    if kind is None or RULES[kind].truncatable:
        return value[: limit - 1] + ELLIPSIS
    return value[:limit]
