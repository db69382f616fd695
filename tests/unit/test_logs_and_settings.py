"""Logs never show a full phone number, openid or secret; bad settings name their variable."""

from __future__ import annotations

import io
import json
import logging

import pytest

from streams.logs import (
    MaskingFilter,
    configure_logging,
    fields,
    get_logger,
    mask_identifier,
    mask_phone,
    mask_text,
)
from streams.settings import SettingsError, load_settings


def test_phone_numbers_are_masked_in_text() -> None:
    assert mask_phone("call 13812345678 now") == "call 138****5678 now"
    assert mask_phone("order 213812345678901") == "order 213812345678901"  # not a phone number


def test_access_tokens_are_masked_in_urls() -> None:
    assert mask_text("POST /send?access_token=sbx_Od9k-P_q&x=1") == "POST /send?access_token=***&x=1"


def test_identifiers_keep_only_their_ends() -> None:
    assert mask_identifier("oR8sT1a2b3c4d5e6f7g8h9i0jKlM") == "oR8s***jKlM"
    assert mask_identifier("13812345678") == "138****5678"


def test_log_lines_are_json_with_masked_recipients(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    configure_logging("INFO")
    handler = logging.getLogger().handlers[0]
    monkeypatch.setattr(handler, "stream", stream)
    get_logger("test").info(
        "sent to 13812345678",
        extra=fields(recipient="oR8sT1a2b3c4d5e6f7g8h9i0jKlM", phone="13998765432", shop_id=1001, code=None),
    )
    line = json.loads(stream.getvalue())
    assert line["message"] == "sent to 138****5678"
    assert line["recipient"] == "oR8s***jKlM"
    assert line["phone"] == "139****5432"
    assert line["shop_id"] == 1001
    assert "code" not in line
    assert isinstance(handler.filters[0], MaskingFilter)


def test_an_invalid_setting_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALL_NOTIFY_WEB_PORT", "seventy")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "MALL_NOTIFY_WEB_PORT: Input should be a valid integer" in str(refused.value)
    assert "KAFKA_BOOTSTRAP_SERVERS: String should have at least 3 characters" in str(refused.value)


def test_a_secret_map_that_is_not_json_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALL_NOTIFY_WECHAT_SECRETS", "wx123=secret")
    with pytest.raises(SettingsError, match="MALL_NOTIFY_WECHAT_SECRETS: not valid JSON"):
        load_settings()


def test_secrets_never_show_in_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALL_NOTIFY_WECHAT_SECRETS", '{"wx5f2a9c1d8e7b6a01": "s3cr3t-value"}')
    settings = load_settings()
    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in str(settings.model_dump())
    assert settings.wechat_secrets["wx5f2a9c1d8e7b6a01"].get_secret_value() == "s3cr3t-value"
