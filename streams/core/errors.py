"""Every exception the pure core raises, in one place.

    Exception
    ├── ConfigError       a data file (catalog, shop settings) or a document breaks a rule;
    │                     ``problems`` names each field
    ├── TopicsError       ``topics.yaml`` is missing or invalid
    ├── EventRejected     a record's bytes are not an event we understand; ``reason`` is the
    │                     dead-letter reason (invalid_json, schema_invalid, unknown_type)
    └── MissingVariable   an event lacks a value a template needs (routing turns it into a skip)

Nothing in the core raises anything else on purpose: an exception of another type is a bug,
and the runtime dead-letters the record that met it with the reason ``internal_error``.
"""

from __future__ import annotations

from enum import StrEnum


class MallNotifyError(Exception):
    """The root of every exception mall-notify raises on purpose."""


class ConfigError(MallNotifyError):
    """A configuration file or document is invalid; the message names the file and the field."""

    def __init__(self, where: str, problems: list[str]) -> None:
        super().__init__(f"{where}: " + "; ".join(problems))
        self.problems = problems


class TopicsError(MallNotifyError):
    """``topics.yaml`` is missing or invalid; the message names the field."""


class RejectReason(StrEnum):
    """Why an event could not be parsed; the value is the dead-letter ``reason`` header."""

    INVALID_JSON = "invalid_json"
    SCHEMA_INVALID = "schema_invalid"
    UNKNOWN_TYPE = "unknown_type"


class EventRejected(MallNotifyError):
    """The bytes of a record are not an event we understand."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class MissingVariable(MallNotifyError):
    """The event lacks a value a template needs."""

    def __init__(self, variable: str) -> None:
        super().__init__(f"missing variable {variable}")
        self.variable = variable
