"""Rendering: template texts split once into literals and ``{variables}``, then filled with an
event's values formatted for people. Pure, no I/O."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from streams.core.catalog import ValueFormat
from streams.core.errors import MissingVariable

MALL_TIME_ZONE = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Slot:
    """A ``{variable}`` in a template text."""

    name: str


Text = tuple[str | Slot, ...]
"""A template text, compiled: literal parts and the slots between them."""


def compile_text(text: str) -> Text:
    """``"您购买的{goods_name}"`` -> ``("您购买的", Slot("goods_name"))``."""
    parts: list[str | Slot] = []
    for literal, name, _spec, _conversion in string.Formatter().parse(text):
        if literal:
            parts.append(literal)
        if name:
            parts.append(Slot(name))
    return tuple(parts)


def fill(text: Text, values: dict[str, str]) -> str:
    """The text with each slot replaced by its value; MissingVariable when one has none."""
    try:
        return "".join(part if part.__class__ is str else values[part.name] for part in text)  # type: ignore[union-attr]
    except KeyError as missing:
        raise MissingVariable(str(missing.args[0])) from None


def render_text(text: str, values: dict[str, str]) -> str:
    return fill(compile_text(text), values)


def format_value(raw: object, value_format: ValueFormat) -> str:
    """Format one event value for people: yuan with two decimals, mall-local times."""
    if value_format is ValueFormat.AMOUNT_FEN and isinstance(raw, int):
        yuan, fen = divmod(raw, 100)
        return f"{yuan}.{fen:02d}元"
    if value_format is ValueFormat.TIME and isinstance(raw, datetime):
        return raw.astimezone(MALL_TIME_ZONE).strftime("%Y-%m-%d %H:%M")
    return str(raw)
