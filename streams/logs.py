"""Structured JSON logs: one line per decision, with phone numbers and openids masked."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

LOGGER_NAME = "mall_notify"
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_SENSITIVE_KEYS = frozenset({"openid", "touser", "recipient", "phone", "phone_numbers"})


def mask_phone(text: str) -> str:
    """Hide the middle four digits of every mainland mobile number in ``text``."""
    return _PHONE.sub(r"\1****\3", text)


def mask_identifier(value: str) -> str:
    """Keep only enough of an openid or phone number to tell two apart in a log."""
    if _PHONE.fullmatch(value):
        return mask_phone(value)
    if len(value) <= 8:
        return "***"
    return f"{value[:4]}***{value[-4:]}"


class MaskingFilter(logging.Filter):
    """Masks phone numbers in messages and identifiers in the well-known extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_phone(record.msg)
        for key in _SENSITIVE_KEYS & record.__dict__.keys():
            value = record.__dict__[key]
            if isinstance(value, str):
                record.__dict__[key] = mask_identifier(value)
        return True


def configure_logging(level: str = "INFO") -> logging.Logger:
    """Send mall-notify's own logs as JSON lines to stderr; returns the project logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level"})
    )
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return logger


def get_logger(component: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{component}")


def fields(**values: Any) -> dict[str, Any]:
    """The ``extra=`` of a log call, with empty values left out."""
    return {key: value for key, value in values.items() if value is not None}
