"""Every exception the project defines derives from one root and is listed in its tree."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import channels
import streams
from streams.core import errors
from streams.core.errors import MallNotifyError


def _project_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in (streams, channels):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if module.name.endswith("__main__"):
                continue
            loaded = importlib.import_module(module.name)
            for name, value in inspect.getmembers(loaded, inspect.isclass):
                if issubclass(value, BaseException) and value.__module__ == loaded.__name__:
                    found[f"{loaded.__name__}.{name}"] = value
    return found


def test_every_project_exception_has_the_one_root_and_is_in_the_tree() -> None:
    found = _project_exceptions()
    assert len(found) >= 20
    outside = sorted(name for name, kind in found.items() if not issubclass(kind, MallNotifyError))
    assert outside == [], "exceptions outside MallNotifyError"
    tree = errors.__doc__ or ""
    unlisted = sorted(name for name, kind in found.items() if f" {kind.__name__} " not in tree)
    assert unlisted == [], "exceptions missing from the tree in streams/core/errors.py"
