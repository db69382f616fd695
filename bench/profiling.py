"""What the benchmark's end-to-end run spends its time on: CPU seconds per process (from /proc) and
a py-spy profile of the worker, sampled while one of its threads holds the GIL."""

from __future__ import annotations

import os
import shutil
import signal
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
    """py-spy on a process from ``delay`` seconds after it is made until :meth:`frames` is asked
    (the whole run being measured), in the background."""

    def __init__(self, pid: int, output: Path, delay: float = 3.0) -> None:
        self._output = output
        self._command = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        self._process: subprocess.Popen[str] | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._record, args=(pid, delay), daemon=True)
        self.error: str | None = None if self._command else "py-spy is not installed (make bench installs it)"
        if self.error is None:
            self._thread.start()

    def _record(self, pid: int, delay: float) -> None:
        threading.Event().wait(delay)
        options = f"-p {pid} -f raw --gil --nonblocking -o {self._output}".split()
        try:
            self._process = subprocess.Popen(
                [str(self._command), "record", *options],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except OSError as exc:
            self.error = str(exc)
        finally:
            self._started.set()

    def _stop(self) -> None:
        """End the recording (py-spy writes its file on SIGINT)."""
        self._started.wait(60)
        process = self._process
        if process is None:
            return
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0 and not self._output.exists():
            lines = stderr.strip().splitlines()
            self.error = lines[-1] if lines else f"py-spy exited with {process.returncode}"

    def frames(self, top: int = 14) -> list[tuple[str, float, float]]:
        """(frame, inclusive share, self share) of the busiest frames, boilerplate left out."""
        if self.error is None:
            self._stop()
        if self.error or not self._output.exists():
            return []
        total, own, inclusive = 0, Counter[str](), Counter[str]()
        for line in self._output.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue  # a line py-spy garbled (a frame name it could not read): not a sample
            frames = stack.split(";")
            total += int(count)
            own[frames[-1]] += int(count)
            for frame in set(frames):
                inclusive[frame] += int(count)
        kept = [(f, n) for f, n in inclusive.most_common() if not any(b in f for b in BOILERPLATE)]
        return [(frame, n / total, own[frame] / total) for frame, n in kept[:top]]
