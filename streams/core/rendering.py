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
class Text:
    """A template text compiled: a format string whose only fields are plain ``{variable}`` names
    (literal braces escaped, format specs dropped), and those names."""

    template: str
    slots: tuple[str, ...]


def compile_text(text: str) -> Text:
    """``"您购买的{goods_name}"`` -> ``Text("您购买的{goods_name}", ("goods_name",))``."""
    parts: list[str] = []
    slots: list[str] = []
    for literal, name, _spec, _conversion in string.Formatter().parse(text):
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        if name:
            parts.append(f"{{{name}}}")
            slots.append(name)
    return Text("".join(parts), tuple(slots))


def fill(text: Text, values: dict[str, str]) -> str:
    """The text with each variable replaced by its value; MissingVariable when one has none."""
    try:
        return text.template.format_map(values)
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
        local = raw.astimezone(MALL_TIME_ZONE)
        return f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"
    return str(raw)
