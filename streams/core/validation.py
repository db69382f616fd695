"""One way to turn a pydantic ValidationError, or a file that cannot be read, into a message that
names each bad field (or the line), fit for one line."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from streams.core.errors import MallNotifyError


class UnreadableFile(MallNotifyError):
    """A file that is missing or is not YAML; the message names the path and the line."""


def read_yaml(path: Path) -> object:
    """A YAML file as Python data."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UnreadableFile(f"{path}: {exc.strerror or exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        raise UnreadableFile(f"{path}: {where}{exc.problem or exc.context} (not valid YAML)") from None
    except yaml.YAMLError as exc:
        raise UnreadableFile(f"{path}: {' '.join(str(exc).split())}") from None


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
