"""One way to turn a pydantic ValidationError into a message that names each bad field."""

from __future__ import annotations

from pydantic import ValidationError


def problems(exc: ValidationError, *, skip_first: int = 0, limit: int = 10) -> list[str]:
    """``path.to.field: what is wrong`` for each error.

    ``skip_first`` drops leading path parts that only name a union member (event type tags).
    """
    found = []
    for error in exc.errors()[:limit]:
        path = ".".join(str(part) for part in error["loc"][skip_first:]) or "(document)"
        found.append(f"{path}: {error['msg']}")
    return found


def describe(exc: ValidationError, *, skip_first: int = 0, limit: int = 10) -> str:
    """The problems joined with ``; ``, for one-line messages."""
    return "; ".join(problems(exc, skip_first=skip_first, limit=limit))
