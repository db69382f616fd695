"""The outside tools some tests run: found where `make test` installs them, never skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.factories import ROOT

PROMETHEUS_BIN = ROOT / ".local" / "tools" / "prometheus" / "usr" / "bin"


def prometheus_tool(name: str) -> Path:
    """``promtool`` or ``prometheus``; a missing one fails the test (CI must have it)."""
    installed = PROMETHEUS_BIN / name
    if installed.exists():
        return installed
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: run deploy/tools/install-prometheus.sh (make test does)")
    return Path(found)
