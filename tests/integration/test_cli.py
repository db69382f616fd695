"""The command line as a user runs it: subprocesses, exit codes and what they print."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from streams.core.topics import load_topics
from streams.devtools.local_stack import SANDBOX_ALIYUN_KEY, SANDBOX_APP_SECRETS
from streams.ops.reading import read_all
from tests.factories import ROOT, SAMPLE_EVENTS, to_bytes


def _run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.integration
def test_topics_ensure_prints_a_table_and_exits_zero(kafka_bootstrap: str) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "MALL_NOTIFY_TOPIC_PREFIX": "cli."}
    result = _run(["topics", "ensure"], env)
    assert result.returncode == 0, result.stderr
    assert "cli.notify.dlq" in result.stdout


@pytest.mark.slow
@pytest.mark.integration
def test_the_demo_shows_what_happened_to_each_sample(kafka_bootstrap: str, database_url: str) -> None:
    prefix = f"demo{uuid.uuid4().hex[:6]}."  # topics of its own: only this run's records are read back
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MALL_NOTIFY_DATABASE_URL": database_url,
        "MALL_NOTIFY_TOPIC_PREFIX": prefix,
        "MALL_NOTIFY_APP_ID": "production-group",
        "MALL_NOTIFY_LOG_LEVEL": "debug",
    }
    result = _run(["demo"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"(prefix {prefix}demo., consumer group mall-notify-demo)" in out
    assert f"settings of demo shop(s) 9001 saved to {prefix}demo.notify.settings" in out
    assert "production-group" not in out
    everything = out + result.stderr + _demo_logs() + _our_topics(kafka_bootstrap, f"{prefix}demo.")
    _assert_nothing_personal_in(everything)
    # the shop onboarded through the admin API: its apps' secrets sealed, shown by their ends only
    assert (
        "WeChat the platform registered shop 9001's Official Account wx5f2a9c1d8e7b6a01 "
        "(AppSecret ***1001) and Mini Program wx9c3e7a1b5d2f4e6a08"
    ) in out
    leaked = [app for app, secret in SANDBOX_APP_SECRETS.items() if secret in everything]
    assert not leaked, f"an AppSecret shown in clear: {leaked}"
    assert SANDBOX_ALIYUN_KEY[1] not in everything, "the AccessKey secret shown in clear"
    assert "What happened to each event" in out
    assert "outcomes: delivered 11, skipped 5, dead_lettered 3" in out
    # a buyer who refused the shop's marketing: their coupon is not sent, the others' are
    assert "Preferences 1 notices skipped as opted_out, not sent: buyer_coupon_issued/wechat_oa" in out
    # quiet hours with the demo's clock: a coupon at 23:00 held, then sent when the window ends
    assert re.search(
        rf"Quiet hours 23:00 in the mall: coupon evt-cpn-night-\w+ held on {prefix}demo.notify.deferred.4h",
        out,
    )
    assert re.search(
        r"the coupon went out when the window ended: delivered on wechat_oa, deferred_until \S+ 08:00", out
    )
    assert "seller_order_paid" in out  # one paid order notifies buyer (OA, MP) and seller (OA)
    assert "buyer_coupon_issued" in out
    assert "code_register" in out
    assert "the sandbox accepted: 2 aliyun_sms, 4 wechat_mp, 5 wechat_oa" in out
    # the shop's order notice goes to the first channel that reaches the buyer: the Mini Program
    assert (
        "Fallback buyer_order_submitted: wechat_oa could not reach the buyer (not_following): "
        "delivered on wechat_mp"
    ) in out
    # the receipts, one of them from a user who blocked the Official Account, and the buyer's history
    assert "receipts: 11 of 11 delivered messages: 10 reached, 1 not reached" in out
    assert "not reached: buyer_coupon_issued/wechat_oa to oBLo***0000: failed:user block" in out
    assert "mall-notify history --openid (the demo buyer)" in out
    assert re.search(r"buyer_order_paid\s*│ wechat_oa │ oR8s\*\*\*jKlM │ delivered │ reached", out)
    # the SMS business: a package bought, a signature approved and activated, the balance down;
    # the order credits nothing until it is paid, and its payment delivered twice credits once
    assert (
        "SMS shop 9001 ordered 基础包 (1000 messages, 45.00 yuan): balance 0 -> 0 while pending; the mall's "
        "payment service paid it (sms_package.paid, delivered twice: sms_purchase_paid: 1000 messages "
        "credited; duplicate_event): balance 0 -> 1000"
    ) in out
    # the buyer accepted the shipping notice twice on the Mini Program: the third parcel's is not sent
    assert (
        "Mini Program shipping notices: 2 sent on the buyer's 2 acceptances, 1 skipped as "
        "no_subscription without asking WeChat"
    ) in out
    # the merchant's papers and Aliyun's reviews, taken by the worker (its poller; Aliyun's push)
    assert "(SubmitSmsQualification): Aliyun approved it (the worker's poller asked)" in out
    assert "lets the platform sign 【百客优选】 (CreateSmsAuthorizationLetter)" in out
    assert (
        "SMS Aliyun approved it (its SignSmsReport push, taken by the worker: approved); "
        "the shop activated it"
    ) in out
    assert '"SignName": "百客优选"' in out
    spent = re.search(r"SMS shop 9001: balance (\d+) -> (\d+) \(2 SMS sent, 2 segments\)", out)
    assert spent
    assert int(spent[1]) - int(spent[2]) == 2
    # the shop's webhook endpoint got a call for each delivered message, each signed with its secret
    called = re.search(
        r"webhooks: the shop's endpoint wh_\w+ \(delivered, failed\) took (\d+) calls .*, (\d+) with", out
    )
    assert called
    assert int(called[1]) == int(called[2]) >= 11
    # the send log in PostgreSQL: the shop's deliveries of the run (the buyer who unfollowed too) and
    # its webhook calls
    assert re.search(r"send log \(PostgreSQL, `mall-notify messages 9001`\): 2[0-9] rows of shop 9001", out)
    assert "43004 not_following" in out  # a buyer who unfollowed: skipped, not a dead letter
    assert "invalid_json" in out
    assert "unknown_type" in out
    assert "schema_invalid" in out
    assert '"client_msg_id"' in out


@pytest.mark.slow
@pytest.mark.integration
def test_settings_can_be_loaded_changed_and_explained(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MALL_NOTIFY_TOPIC_PREFIX": f"cli{uuid.uuid4().hex[:6]}.",
    }
    assert _run(["topics", "ensure"], env).returncode == 0
    loaded = _run(["settings", "load", "config/shops/demo.yaml"], env)
    assert "saved the settings of shop(s) 9001" in loaded.stdout, loaded.stderr
    refused = _run(
        [
            "settings",
            "set",
            "9001",
            "buyer_order_paid",
            "wechat_oa",
            "--template",
            "custom",
            "--field",
            "thing3=您购买的{goods}",
        ],
        env,
    )
    assert refused.returncode == 3
    assert "fields.thing3: unknown variable goods" in refused.stderr
    changed = _run(["settings", "set", "9001", "buyer_order_paid", "wechat_mp", "--disable"], env)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.splitlines()[:2] == [
        "saved: shop 9001 buyer_order_paid wechat_mp",
        "enabled: false",
    ]
    shown = json.loads(_run(["settings", "show", "9001", "--json"], env).stdout)
    assert shown["scenes"]["buyer_order_paid"]["wechat_mp"]["enabled"] is False
    event_file = tmp_path / "event.json"
    event_file.write_bytes(to_bytes(SAMPLE_EVENTS["payment.succeeded"]))
    as_json = json.loads(_run(["explain", str(event_file), "--shop", "9001", "--json"], env).stdout)
    assert {"scene": "buyer_order_paid", "channel": "wechat_mp", "reason": "disabled by the shop"} in [
        skip | {"reason": skip["reason"].split(" (")[0]} for skip in as_json["skips"]
    ]
    explained = _run(["explain", str(event_file), "--shop", "9001"], env)
    assert explained.returncode == 0, explained.stderr
    lines = explained.stdout.splitlines()
    assert any(
        "buyer_order_paid" in line and "wechat_mp" in line and "disabled by the shop" in line
        for line in lines
    )
    assert any("seller_order_paid" in line and "yes" in line for line in lines)


def _demo_logs() -> str:
    return "".join(path.read_text(errors="replace") for path in (ROOT / ".local" / "demo").glob("*.log"))


def _our_topics(bootstrap: str, prefix: str) -> str:
    """Everything the demo's run left in the pipeline's own topics (all but the event topics,
    which are upstream's): sends, retries, dead letters, outcomes, receipts, ledgers, settings..."""
    topics = load_topics(ROOT / "config" / "topics.yaml", prefix)
    ours = [spec.name for spec in topics.all() if spec.name.startswith(prefix + "notify.")]
    assert len(ours) > 20
    return "".join(
        (record.value or b"").decode(errors="replace")
        for name in ours
        for record in read_all(bootstrap, name, timeout=60)
    )


def _assert_nothing_personal_in(text: str) -> None:
    """Every phone number and openid of the demo's samples is masked wherever the demo wrote."""
    samples = (ROOT / "config" / "samples" / "demo-events.jsonl").read_text()
    personal = set(re.findall(r"(?<!\d)1[3-9]\d{9}(?!\d)", samples)) | set(
        re.findall(r"\bo[A-Za-z0-9_-]{27}\b", samples)
    )
    assert len(personal) >= 5  # the check checks something
    assert "DEBUG" in text  # the worker logged at its most verbose
    leaked = sorted(value for value in personal if value in text)
    assert not leaked, f"shown in clear: {leaked}"
