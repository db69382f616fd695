"""Start and stop the sandbox and a worker as child processes: for the demo and the integration tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from streams.settings import PROJECT_ROOT

SANDBOX_SEED = PROJECT_ROOT / "config" / "sandbox.yaml"
_SEED = yaml.safe_load(SANDBOX_SEED.read_text(encoding="utf-8"))
SANDBOX_APP_SECRETS = {app["appid"]: app["secret"] for app in _SEED["wechat_apps"]}
"""The sandbox's own (not real) secrets of its WeChat apps, as config/sandbox.yaml holds them."""
SANDBOX_SECRETS = json.dumps(
    {
        appid: secret
        for app in _SEED["wechat_apps"]
        if app.get("seeded", True)
        for appid, secret in [(app["appid"], app["secret"])]
    }
)
"""the development seed of the local stack: the apps not registered at run time"""
SANDBOX_ALIYUN_KEY = ("LTAI5tSandboxMallNotify01", "sandbox-aliyun-secret-0001")


def sandbox_channel_env(sandbox_url: str) -> dict[str, str]:
    """Settings that point every channel of a worker at the sandbox."""
    return {
        "MALL_NOTIFY_WECHAT_OA_API_BASE": sandbox_url,
        "MALL_NOTIFY_WECHAT_MP_API_BASE": sandbox_url,
        "MALL_NOTIFY_WECHAT_SECRETS": SANDBOX_SECRETS,
        "MALL_NOTIFY_ALIYUN_SMS_ENDPOINT": sandbox_url.removeprefix("http://"),
        "MALL_NOTIFY_ALIYUN_SMS_PROTOCOL": "http",
        "MALL_NOTIFY_ALIYUN_ACCESS_KEY_ID": SANDBOX_ALIYUN_KEY[0],
        "MALL_NOTIFY_ALIYUN_ACCESS_KEY_SECRET": SANDBOX_ALIYUN_KEY[1],
        # the sandbox plays merchants' webhook receivers too (on loopback, over http)
        "MALL_NOTIFY_WEBHOOK_ALLOWED_HOSTS": json.dumps([sandbox_url.removeprefix("http://")]),
        **SANDBOX_PUSH_ENV,
    }


SANDBOX_PUSH_ENV = {
    "MALL_NOTIFY_WECHAT_PUSH_TOKEN": _SEED["receipts"]["wechat_token"],
    "MALL_NOTIFY_WECHAT_AES_KEYS": json.dumps(_SEED["receipts"]["aes_keys"]),
    "MALL_NOTIFY_ALIYUN_REPORT_SECRET": _SEED["receipts"]["aliyun_secret"],
}
"""What the receipts endpoint must know to take the sandbox's pushes (config/sandbox.yaml)."""


def config_with_tiers(target: Path, delays: tuple[int, ...]) -> Path:
    """A copy of config/ whose retry tiers wait ``delays`` seconds (tests and benchmarks)."""
    shutil.copytree(PROJECT_ROOT / "config", target)
    spec = (target / "topics.yaml").read_text()
    start = spec.index("  tiers:\n")
    end = spec.index("\n\n", start) + 1
    tiers = "".join(f"    - {{name: {d}s, delay_seconds: {d}}}\n" for d in delays)
    (target / "topics.yaml").write_text(spec[:start] + "  tiers:\n" + tiers + spec[end:])
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``url`` answers 200 (or the process dies, or time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s")


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _spawn(name: str, args: list[str], env: Mapping[str, str], log_dir: Path, url: str) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams", *args],
            env={**os.environ, **env},
            cwd=PROJECT_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return Service(name, process, log_path, url)


def start_sandbox(
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    receipts_url: str | None = None,
) -> Service:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    pushing = ["--receipts-url", receipts_url] if receipts_url else []
    service = _spawn("sandbox", ["sandbox", "--port", str(port), *pushing], env or {}, log_dir, url)
    _wait_or_stop(service, f"{url}/__sandbox__/health", timeout)
    return service


def start_worker(
    log_dir: Path, env: Mapping[str, str], timeout: float = 90.0, name: str = "worker"
) -> Service:
    """A worker with its own web port; returns once it has its partitions (``/readyz``)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state = {"MALL_NOTIFY_STATE_DIR": str(log_dir / f"{name}-state")}  # its own, kept across restarts
    service = _spawn(name, ["worker"], {**state, **env, "MALL_NOTIFY_WEB_PORT": str(port)}, log_dir, url)
    _wait_or_stop(service, f"{url}/readyz", timeout)
    return service


def start_receipts(log_dir: Path, env: Mapping[str, str], timeout: float = 30.0) -> Service:
    """The receipts endpoint on its own port, taking the sandbox's pushes."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**SANDBOX_PUSH_ENV, **env, "MALL_NOTIFY_RECEIPTS_PORT": str(port)}
    service = _spawn("receipts", ["receipts"], env, log_dir, url)
    _wait_or_stop(service, f"{url}/healthz", timeout)
    return service


def start_api(log_dir: Path, env: Mapping[str, str], timeout: float = 60.0) -> Service:
    """The admin API on its own port; returns once it has loaded the settings (``/healthz``)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = _spawn("api", ["api"], {**env, "MALL_NOTIFY_API_PORT": str(port)}, log_dir, url)
    _wait_or_stop(service, f"{url}/healthz", timeout)
    return service


@contextmanager
def running_api(log_dir: Path, env: Mapping[str, str]) -> Iterator[Service]:
    """The admin API (:func:`start_api`), stopped on exit."""
    api = start_api(log_dir, env)
    try:
        yield api
    finally:
        api.stop()


def _wait_or_stop(service: Service, url: str, timeout: float) -> None:
    try:
        wait_http(url, timeout, service.process)
    except (RuntimeError, TimeoutError) as exc:
        service.stop(signal.SIGKILL)
        raise RuntimeError(f"{service.name} did not start: {exc}\n{service.log_tail()}") from None


@contextmanager
def running_stack(log_dir: Path, env: Mapping[str, str]) -> Iterator[tuple[Service, Service]]:
    """Receipts endpoint, sandbox (pushing receipts to it) and worker wired together; all stopped
    on exit."""
    receipts = start_receipts(log_dir, env)
    try:
        sandbox = start_sandbox(log_dir, env, receipts_url=receipts.url)
        try:
            worker_env = {**sandbox_channel_env(sandbox.url), **env}
            worker = start_worker(log_dir, worker_env)
            try:
                yield sandbox, worker
            finally:
                worker.stop()
        finally:
            sandbox.stop()
    finally:
        receipts.stop()
