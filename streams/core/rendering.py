"""Rendering: an event and a template give the keyword values a provider receives. Pure, no I/O."""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from channels.wechat_values import fit
from streams.core.catalog import TemplateDefinition, ValueFormat, Variable, lookup
from streams.core.errors import MissingVariable

MALL_TIME_ZONE = ZoneInfo("Asia/Shanghai")


def format_value(raw: object, value_format: ValueFormat) -> str:
    """Format one event value for people: yuan with two decimals, mall-local times."""
    if value_format is ValueFormat.AMOUNT_FEN and isinstance(raw, int):
        yuan, fen = divmod(raw, 100)
        return f"{yuan}.{fen:02d}元"
    if value_format is ValueFormat.TIME and isinstance(raw, datetime):
        return raw.astimezone(MALL_TIME_ZONE).strftime("%Y-%m-%d %H:%M")
    return str(raw)


def variable_values(document: Mapping[str, Any], variables: Mapping[str, Variable]) -> dict[str, str]:
    """Every variable the event has a value for, formatted."""
    values = {}
    for name, variable in variables.items():
        raw = lookup(document, variable.source)
        if raw is not None and raw != "":
            values[name] = format_value(raw, variable.format)
        elif variable.default is not None:
            values[name] = variable.default
    return values


def render_fields(fields: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """Fill each keyword's text with the variable values and fit it to its WeChat type."""
    return {keyword: fit(keyword, render_text(text, values)) for keyword, text in fields.items()}


def render_link(template: TemplateDefinition, values: Mapping[str, str]) -> str | None:
    return render_text(template.link, values) if template.link else None


def render_text(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each {variable} replaced by its value; MissingVariable when one has none."""
    parts = []
    for literal, name, _spec, _conversion in string.Formatter().parse(text):
        parts.append(literal)
        if name:
            if name not in values:
                raise MissingVariable(name)
            parts.append(values[name])
    return "".join(parts)
