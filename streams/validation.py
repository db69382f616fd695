"""One way to turn a pydantic ValidationError into a message that names each bad field."""

from __future__ import annotations

from pydantic import ValidationError


def describe(exc: ValidationError, *, skip_first: int = 0, limit: int = 10) -> str:
    """``path.to.field: what is wrong`` for each error, joined with ``; ``.

    ``skip_first`` drops leading path parts that only name a union member (event type tags).
    """
    parts = []
    for error in exc.errors()[:limit]:
        path = ".".join(str(part) for part in error["loc"][skip_first:]) or "(document)"
        parts.append(f"{path}: {error['msg']}")
    return "; ".join(parts)
