"""What the benchmark's end-to-end run spends its time on: CPU seconds per process (from /proc) and
a py-spy profile of the worker, sampled while one of its threads holds the GIL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

BOILERPLATE = (
    "runpy",
    "typer",
    "click",
    "asyncio/runners",
    "asyncio/base_events",
    "asyncio/events",
    "streams/cli.py",
    "streams/runtime/worker.py",
    "streams/runtime/supervisor.py",
    "__main__",
    "threading.py",
)
"""Frames every sample goes through (the loop, the command, the supervisor): they say nothing."""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._start = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def spent(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self._start[name] for name, pid in self._pids.items()}


class GilProfile:
    """py-spy on a process for a while, in the background; ``frames()`` afterwards."""

    def __init__(self, pid: int, output: Path, delay: float = 3.0, seconds: float = 10.0) -> None:
        self._output = output
        self._command = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        self._thread = threading.Thread(target=self._record, args=(pid, delay, seconds), daemon=True)
        self.error: str | None = None if self._command else "py-spy is not installed (make bench installs it)"
        if self.error is None:
            self._thread.start()

    def _record(self, pid: int, delay: float, seconds: float) -> None:
        threading.Event().wait(delay)
        options = f"-p {pid} -d {int(seconds)} -f raw --gil --nonblocking -o {self._output}".split()
        try:
            done = subprocess.run([str(self._command), "record", *options], capture_output=True, text=True)
        except OSError as exc:
            self.error = str(exc)
            return
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            self.error = lines[-1] if lines else f"py-spy exited with {done.returncode}"

    def frames(self, top: int = 14) -> list[tuple[str, float, float]]:
        """(frame, inclusive share, self share) of the busiest frames, boilerplate left out."""
        if self.error is None:
            self._thread.join(timeout=60)
        if self.error or not self._output.exists():
            return []
        total, own, inclusive = 0, Counter[str](), Counter[str]()
        for line in self._output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            total += int(count)
            own[frames[-1]] += int(count)
            for frame in set(frames):
                inclusive[frame] += int(count)
        kept = [(f, n) for f, n in inclusive.most_common() if not any(b in f for b in BOILERPLATE)]
        return [(frame, n / total, own[frame] / total) for frame, n in kept[:top]]
