"""Structured JSON logs: one line per decision, with phone numbers and openids masked."""

from __future__ import annotations

import logging
import logging.config
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from pythonjsonlogger.json import JsonFormatter

LOGGER_NAME = "mall_notify"
_PHONE = re.compile(r"(?<![\d+])(\+?86[-+ ]?)?(1[3-9]\d)[-+ ]?(\d{4})[-+ ]?(\d{4})(?!\d)")
"""A mainland mobile number: 13812345678, +8613812345678, 8613812345678, 138-1234-5678, 138 1234 5678
(and 138+1234+5678, a query string's spaces)"""
_OPENID = re.compile(
    r"(?<![A-Za-z0-9_-])(o[A-Za-z0-9_-]{3})[A-Za-z0-9_-]{20}([A-Za-z0-9_-]{4})(?![A-Za-z0-9_-])"
)
"""A WeChat openid in free text: 28 characters starting with ``o``"""
_SENSITIVE_KEYS = frozenset(
    {"openid", "oa_openid", "mp_openid", "touser", "recipient", "phone", "phone_numbers", "phonenumbers"}
)
_TOKEN = re.compile(r"((?:access_token|secret|AccessKeySecret)=)[^&\s\"']+", re.IGNORECASE)


def mask_phone(text: str) -> str:
    """Hide the middle four digits of every mainland mobile number in ``text``."""
    return _PHONE.sub(lambda m: f"{m[1] or ''}{m[2]}****{m[4]}", text)


_SECRETS: set[str] = set()
"""the configured secrets and tokens (:func:`redact`): never written, wherever a client put them"""
_SHORTEST_SECRET = 6


def redact(*secrets: str) -> None:
    """Never log these values (configured secrets and tokens), nor their URL-encoded forms."""
    for secret in secrets:
        if len(secret) >= _SHORTEST_SECRET:
            forms = {secret, secret.replace(" ", "+"), quote(secret, safe=""), quote_plus(secret, safe="")}
            _SECRETS.update(forms)


def mask_text(text: str) -> str:
    """Configured secrets, phone numbers, openids and access tokens hidden in free text (messages,
    URLs, tracebacks), URL-encoded or not (a URL-encoded text is masked decoded)."""
    if "%" in text:
        text = unquote(text)
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return _TOKEN.sub(r"\1***", _OPENID.sub(r"\1***\2", mask_phone(text)))


def mask_identifier(value: str) -> str:
    """Keep only enough of an openid or phone number to tell two apart in a log."""
    if _PHONE.fullmatch(value):
        return mask_phone(value)
    if len(value) <= 8:
        return "***"
    return f"{value[:4]}***{value[-4:]}"


def mask_value(value: Any, key: str | None = None) -> Any:
    """``value`` with identifiers masked at any depth: under a well-known key (``touser``,
    ``PhoneNumbers``...) the whole text, elsewhere what looks like a phone number or openid."""
    if isinstance(value, str):
        return (
            mask_identifier(value) if key is not None and key.lower() in _SENSITIVE_KEYS else mask_text(value)
        )
    if isinstance(value, dict):
        return {name: mask_value(item, str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(item, key) for item in value]
    return value


_STANDARD = frozenset(logging.makeLogRecord({}).__dict__)


class MaskingFilter(logging.Filter):
    """Masks identifiers in the well-known extra fields, and phone numbers, openids and access
    tokens in the message and every other field, nested ones too (libraries put URLs in their
    own extras)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        if record.args:
            record.args = (
                tuple(mask_value(a) for a in record.args) if isinstance(record.args, tuple) else record.args
            )
        for key in record.__dict__.keys() - _STANDARD:
            record.__dict__[key] = mask_value(record.__dict__[key], key)
        return True


class MaskingJsonFormatter(JsonFormatter):
    """JSON lines whose tracebacks are masked too (an exception's text may quote a recipient)."""

    def formatException(self, ei: Any) -> str | list[str]:  # type: ignore[override]  # noqa: N802
        return mask_value(super().formatException(ei))  # type: ignore[no-any-return]

    def formatStack(self, stack_info: str) -> str | list[str]:  # type: ignore[override]  # noqa: N802
        return mask_value(super().formatStack(stack_info))  # type: ignore[no-any-return]


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """``logging.config.dictConfig`` settings: every logger (ours, aiohttp's, librdkafka's through
    confluent-kafka) as masked JSON on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": MaskingJsonFormatter,
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "asctime": "time"},
            }
        },
        "filters": {"mask": {"()": MaskingFilter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["mask"],
            }
        },
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {
            LOGGER_NAME: {"level": level},
        },
    }


def configure_logging(level: str = "INFO") -> logging.Logger:
    """Apply :func:`logging_config`; returns the project logger."""
    logging.config.dictConfig(logging_config(level))
    return logging.getLogger(LOGGER_NAME)


def get_logger(component: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{component}")


def fields(**values: Any) -> dict[str, Any]:
    """The ``extra=`` of a log call, with empty values left out."""
    return {key: value for key, value in values.items() if value is not None}


class Repeats:
    """Logs each kind of message at most once per interval; the next line of that kind says how
    many were left out (``repeated``). For errors that come in floods: a broker outage makes every
    client report every failed connection attempt."""

    def __init__(
        self, logger: logging.Logger, interval_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._interval = interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}
        """message -> (when it was last logged, how many were left out since)"""

    def warning(self, message: str, **extra: Any) -> bool:
        """Log ``message`` unless it was logged less than an interval ago; True when it was logged."""
        return self.log(logging.WARNING, message, **extra)

    def log(self, level: int, message: str, **extra: Any) -> bool:
        """:meth:`warning` at another level."""
        if not self._logger.isEnabledFor(level):
            return False
        now = self._clock()
        with self._lock:
            logged_at, left_out = self._last.get(message, (float("-inf"), 0))
            if now - logged_at < self._interval:
                self._last[message] = (logged_at, left_out + 1)
                return False
            self._last[message] = (now, 0)
        self._logger.log(level, message, extra=fields(repeated=left_out or None, **extra))
        return True
