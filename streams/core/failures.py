"""The history a failed record carries in its Kafka headers, through retry tiers, the dead-letter
topic and replays. Pure: building, reading and advancing it needs no Kafka.

Every header is ``x-notify-<field>``: ``stage``, ``reason``, ``detail``, ``origin-topic``,
``origin-partition``, ``origin-offset`` (where the record was first read), ``event-id``,
``delivery-id``, ``attempts``, ``first-failed-at``, ``last-failed-at``, ``error-class``,
``provider-code``, ``due-at`` (retry records), ``replays`` and ``replayed-at`` (replayed records).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, ValidationError

from channels.base import ErrorClass
from streams.core.source import SourceRecord

PREFIX = "x-notify-"
Headers = list[tuple[str, bytes]]
TOO_LARGE = "too_large"
"""The reason of a dead letter that holds a reference to a record too large to copy, not the record."""


class Stage(StrEnum):
    """Where in the pipeline a failure happened."""

    PARSE = "parse"
    ROUTE = "route"
    SEND = "send"


class Failure(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: Stage
    reason: str
    detail: str
    origin: SourceRecord
    first_failed_at: datetime
    last_failed_at: datetime
    attempts: int = 1
    event_id: str | None = None
    delivery_id: str | None = None
    error_class: ErrorClass | None = None
    provider_code: str | None = None
    due_at: datetime | None = None
    replays: int = 0
    replayed_at: datetime | None = None

    def headers(self) -> Headers:
        flat = self.model_dump(mode="json", exclude_none=True)
        origin = flat.pop("origin")
        flat.update({f"origin_{key}": value for key, value in origin.items()})
        flat["detail"] = str(flat["detail"])[:1000]
        return [(PREFIX + name.replace("_", "-"), str(value).encode()) for name, value in flat.items()]

    @classmethod
    def from_headers(cls, headers: Headers | None) -> Failure | None:
        """The history in ``headers``, or None for a record that never failed (or unreadable history)."""
        values = {
            name[len(PREFIX) :].replace("-", "_"): value.decode(errors="replace")
            for name, value in headers or []
            if name.startswith(PREFIX)
        }
        if "stage" not in values:
            return None
        try:
            origin = {key: values.pop(f"origin_{key}") for key in ("topic", "partition", "offset")}
            return cls.model_validate({**values, "origin": origin})
        except (KeyError, ValidationError):
            return None

    def again(
        self,
        *,
        reason: str,
        detail: str,
        at: datetime,
        error_class: ErrorClass | None,
        provider_code: str | None,
    ) -> Failure:
        """The history after one more failed attempt."""
        return self.model_copy(
            update={
                "reason": reason,
                "detail": detail,
                "last_failed_at": at,
                "attempts": self.attempts + 1,
                "error_class": error_class,
                "provider_code": provider_code,
                "due_at": None,
            }
        )

    def partition_in(self, topic: str) -> int | None:
        """The partition the record was first read from, when it goes back to that topic (its ledger
        entry is there); None when it goes elsewhere and its key decides."""
        return self.origin.partition if self.origin.topic == topic else None

    def replayed(self, at: datetime) -> Failure:
        """The history of a record sent again from the dead-letter topic: attempts start over."""
        return self.model_copy(
            update={"attempts": 0, "replays": self.replays + 1, "replayed_at": at, "due_at": None}
        )


def header_map(headers: Headers | None) -> dict[str, str]:
    """Kafka headers as a dict of text, for people and tests."""
    return {name: value.decode(errors="replace") for name, value in headers or []}
