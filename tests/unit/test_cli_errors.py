"""Every command answers a mistake with one line and an exit code by class (2 usage, 3
configuration, 4 Kafka did not answer), never a traceback; offline checks come before Kafka.
Subprocesses as a user runs them; no broker needed (Kafka is pointed at a closed port)."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.core.tokens import hash_token
from tests.factories import ROOT

NOWHERE = "127.0.0.1:1"


def _run(
    args: list[str], env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        cwd=ROOT,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": NOWHERE, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The refusal, checked to be a single line with no traceback anywhere."""
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("args", [["settings", "show", "9001"], ["topics", "ensure"], ["dlq", "list"]])
def test_a_wrong_kafka_address_is_one_line_naming_it(args: list[str]) -> None:
    result = _run(args)
    assert result.returncode == 4
    assert one_line(result).startswith(f"Kafka at {NOWHERE} did not answer within 5 s")


def test_the_demo_checks_its_files_before_it_connects(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    (config / "shops" / "demo.yaml").write_text("shop_id: 9001\nname: [unclosed\n")
    result = _run(["demo"], {"MALL_NOTIFY_CONFIG_DIR": str(config)})
    assert result.returncode == 3  # not 4: Kafka was never asked
    assert "demo.yaml" in one_line(result)


def test_the_demo_refuses_a_real_shop(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    shop = config / "shops" / "demo.yaml"
    shop.write_text(shop.read_text().replace("shop_id: 9001", "shop_id: 1001"))
    result = _run(["demo"], {"MALL_NOTIFY_CONFIG_DIR": str(config)})
    assert result.returncode == 3
    assert "the demo only uses shops 9001-9999, never a real shop; found shop 1001" in one_line(result)


def test_a_broken_topics_file_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    (config / "topics.yaml").write_text("events: [")
    result = _run(["topics", "list"], {"MALL_NOTIFY_CONFIG_DIR": str(config)})
    assert result.returncode == 3
    assert "topics.yaml" in one_line(result)


def test_settings_set_checks_the_scene_before_it_connects() -> None:
    result = _run(["settings", "set", "9001", "nope", "wechat_oa", "--enable"])
    assert result.returncode == 2
    assert one_line(result) == "'nope' is not a scene of the catalog (`mall-notify catalog` lists them)"


@pytest.mark.parametrize(
    ("off", "said"),
    [
        ("security", "--off security: security notices (verification codes) cannot be refused"),
        (
            "sms",
            "--off sms: neither a category (transactional, marketing) nor a channel (wechat_oa, "
            "wechat_mp, aliyun_sms)",
        ),
    ],
)
def test_a_buyers_preference_that_cannot_be_is_refused_before_it_connects(off: str, said: str) -> None:
    result = _run(["preferences", "set", "9001", "u-1", "--off", "marketing", "--off", off])
    assert result.returncode == 3
    assert one_line(result) == said


def test_a_custom_field_with_a_lone_brace_is_refused_naming_the_field(tmp_path: Path) -> None:
    shop = (ROOT / "config" / "shops" / "demo.yaml").read_text()
    broken = shop.replace(
        "  buyer_order_paid:\n    wechat_oa: {enabled: true, template: default,",
        "  buyer_order_paid:\n    wechat_oa: {fields: {first: 'abc{'}, enabled: true, template: custom,",
    )
    assert broken != shop
    (tmp_path / "shop.yaml").write_text(broken)
    result = _run(["settings", "load", str(tmp_path / "shop.yaml")])
    assert result.returncode == 3
    assert "scenes.buyer_order_paid.wechat_oa: fields.first: Single '{' encountered" in one_line(result)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["explain", "/nonexistent/event.json", "--shop", "9001"], 2, "cannot read /nonexistent/event.json"),
        (["sandbox", "--seed", "/nonexistent.yaml"], 3, "--seed /nonexistent.yaml"),
        (["dlq", "show", "not-coordinates"], 2, "'not-coordinates' is not PARTITION@OFFSET"),
        (["publish", "/nonexistent.jsonl"], 2, "cannot read /nonexistent.jsonl"),
    ],
)
def test_a_missing_file_or_bad_argument_is_one_line(args: list[str], code: int, message: str) -> None:
    result = _run(args)
    assert result.returncode == code
    assert message in one_line(result)


def test_publish_refuses_an_event_the_pipeline_would_dead_letter_before_it_connects(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text(
        '{"specversion": "1.0", "id": "e1", "type": "payment.succeeded"}\n'
    )
    result = _run(["publish", str(tmp_path / "events.jsonl")])
    assert result.returncode == 2
    assert "event 1 is not one the pipeline accepts" in one_line(result)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_the_sandbox_on_a_port_in_use_says_so_and_never_that_it_listens(taken_port: int) -> None:
    result = _run(["sandbox", "--port", str(taken_port)])
    assert result.returncode == 2
    assert f"sandbox cannot listen on 127.0.0.1:{taken_port}" in one_line(result)
    assert "listening" not in result.stdout


def test_a_worker_on_a_port_in_use_names_the_setting_before_anything_starts(
    taken_port: int, tmp_path: Path
) -> None:
    env = {"MALL_NOTIFY_WEB_PORT": str(taken_port), "MALL_NOTIFY_STATE_DIR": str(tmp_path)}
    result = _run(["worker"], env)
    assert result.returncode == 3
    assert one_line(result).startswith(f"MALL_NOTIFY_WEB_PORT={taken_port} on 127.0.0.1: ")


def test_a_second_worker_on_the_same_state_directory_is_refused(tmp_path: Path) -> None:
    with (tmp_path / ".lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = _run(["worker"], {"MALL_NOTIFY_STATE_DIR": str(tmp_path)})
    assert result.returncode == 3
    assert one_line(result) == (
        f"MALL_NOTIFY_STATE_DIR={tmp_path} is used by another worker: give each worker its own"
    )


def test_an_invalid_setting_is_a_configuration_error() -> None:
    result = _run(["worker"], {"MALL_NOTIFY_WEB_PORT": "0"})
    assert result.returncode == 3
    assert "MALL_NOTIFY_WEB_PORT: Input should be greater than or equal to 1" in one_line(result)


def test_version_and_hash_token() -> None:
    assert _run(["--version"]).stdout.startswith("mall-notify 0.")
    hashed = _run(["hash-token"], stdin="shop-1001-token-0001\n")
    assert hashed.stdout.strip() == hash_token("shop-1001-token-0001")
    assert _run(["hash-token"], stdin="short\n").returncode == 2


def test_the_api_refuses_a_token_given_to_two_shops_in_one_line() -> None:
    shared = '{"1001": "a-token-of-sixteen-chars", "1002": "a-token-of-sixteen-chars"}'
    result = _run(["api"], {"MALL_NOTIFY_API_SHOP_TOKENS": shared})
    assert result.returncode == 3
    assert "one token is given to both 1001 and 1002" in one_line(result)
    assert "a-token-of-sixteen-chars" not in result.stderr


def test_the_api_on_a_port_in_use_says_so(taken_port: int) -> None:
    result = _run(["api"], {"MALL_NOTIFY_API_PORT": str(taken_port)})
    assert result.returncode == 2
    assert f"the admin API cannot listen on 127.0.0.1:{taken_port}" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr
