"""Admin tokens (hashed, rotated, never shared), which dead letters a replay takes, and what an
audit line says changed. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import SecretStr

from channels.base import ErrorClass, SendResult
from streams.api.context import wechat_refusal
from streams.core.errors import ConfigError
from streams.core.failures import Failure, Stage
from streams.core.settings_history import differences as changes
from streams.core.source import SourceRecord
from streams.core.tokens import PLATFORM, Tokens, hash_token
from streams.ops.cli_publish import event_values
from streams.ops.dlq import describe, latest_letters
from streams.ops.reading import ReadRecord

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
OLD, NEW, PLATFORM_TOKEN = "shop-1001-token-old", "shop-1001-token-new", "platform-token-0001"


def test_a_token_configured_as_its_hash_or_in_clear_finds_its_owner() -> None:
    tokens = Tokens.configured(
        SecretStr(hash_token(PLATFORM_TOKEN)), {"1001": [SecretStr(OLD), SecretStr(hash_token(NEW))]}
    )
    assert tokens.identity(PLATFORM_TOKEN) == PLATFORM
    assert tokens.identity(OLD) == "1001"  # a rotation: both tokens work until the old one is removed
    assert tokens.identity(NEW) == "1001"
    assert tokens.identity(hash_token(NEW)) is None  # the hash itself is no token
    assert tokens.identity("") is None


@pytest.mark.parametrize(
    ("shops", "message"),
    [
        ({"1001": SecretStr(OLD), "1002": SecretStr(hash_token(OLD))}, "given to both 1001 and 1002"),
        ({"1001": SecretStr("short")}, "at least 16 characters"),
        ({"01001": SecretStr(OLD)}, "a shop id is digits, no zero first"),
        ({"1001": SecretStr("sha256:abc")}, "64 lowercase hex digits"),
    ],
)
def test_bad_or_shared_tokens_are_refused_naming_the_variable(
    shops: dict[str, SecretStr], message: str
) -> None:
    with pytest.raises(ConfigError, match="MALL_NOTIFY_API_SHOP_TOKENS") as refused:
        Tokens.configured(None, shops)
    assert message in str(refused.value)


def test_the_platform_token_may_not_also_be_a_shops() -> None:
    with pytest.raises(ConfigError, match="given to both platform and 1001"):
        Tokens.configured(SecretStr(OLD), {"1001": SecretStr(OLD)})


def _letter(offset: int, replays: int, error_class: ErrorClass, delivery_id: str = "d-1") -> ReadRecord:
    failure = Failure(
        stage=Stage.SEND,
        reason=str(error_class),
        detail="",
        origin=SourceRecord(topic="notify.send.wechat_oa", partition=2, offset=9),
        first_failed_at=NOW,
        last_failed_at=NOW,
        delivery_id=delivery_id,
        error_class=error_class,
        provider_code="43004",
        replays=replays,
    )
    return ReadRecord("notify.dlq", 0, offset, b"E1", b"{}", failure.headers())


def test_a_replay_takes_only_the_latest_letter_of_each_delivery() -> None:
    """A delivery replayed and dead-lettered again has two letters; the second replay must not
    send it twice (nor find twice as many as the first)."""
    first, again, other = (
        _letter(3, 0, ErrorClass.TRANSIENT),
        _letter(8, 1, ErrorClass.TRANSIENT),
        _letter(5, 0, ErrorClass.TRANSIENT, delivery_id="d-2"),
    )
    kept, left_out = latest_letters(describe(r) for r in (first, other, again))
    assert [letter.record.offset for letter in kept] == [5, 8]
    assert left_out == 1


def test_failures_the_provider_called_permanent_are_known_permanent() -> None:
    assert describe(_letter(1, 0, ErrorClass.PERMANENT)).known_permanent
    assert not describe(_letter(1, 0, ErrorClass.TRANSIENT)).known_permanent


def test_an_audit_line_names_each_changed_value() -> None:
    before = {"name": "a", "scenes": {"paid": {"wechat_oa": {"enabled": False, "template_id": "T1"}}}}
    after = {"name": "a", "scenes": {"paid": {"wechat_oa": {"enabled": True, "template_id": "T1"}}}}
    assert changes(before, after) == ["scenes.paid.wechat_oa.enabled: False -> True"]
    assert changes({}, {"name": "b"}) == ["name: None -> b"]


@pytest.mark.parametrize(
    ("text", "count"),
    [
        (b'{\n  "id": "e1",\n  "type": "x"\n}\n', 1),
        (b'[{"id": "e1"}, {"id": "e2"}]', 2),
        (b'{"id": "e1"}\n{"id": "e2"}\n\n{"id": "e3"}\n', 3),
    ],
)
def test_publish_reads_one_event_an_array_or_json_lines(text: bytes, count: int) -> None:
    assert len(event_values(text)) == count


@pytest.mark.parametrize(
    ("code", "error_class", "status"),
    [
        ("40037", ErrorClass.PERMANENT, 404),
        ("45026", ErrorClass.PERMANENT, 409),
        ("40013", ErrorClass.PERMANENT, 422),
        ("-1", ErrorClass.TRANSIENT, 502),
    ],
)
def test_wechat_refusals_are_answered_by_whose_mistake_they_are(
    code: str, error_class: ErrorClass, status: int
) -> None:
    answer = wechat_refusal(SendResult.failed(error_class, code, "what WeChat said"))
    assert answer.status == status
    assert code in orjson.loads(answer.body)["problems"][0]
