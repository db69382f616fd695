"""Logs never show a full phone number, openid or secret; bad settings name their variable."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from streams.logs import (
    MaskingFilter,
    configure_logging,
    fields,
    get_logger,
    mask_identifier,
    mask_phone,
    mask_text,
    redact,
)
from streams.settings import Settings, SettingsError, configuration_reference, load_settings
from tests.factories import ROOT


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


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call +8613812345678", "call +86138****5678"),
        ("call 8613812345678", "call 86138****5678"),
        ("call 138-1234-5678", "call 138****5678"),
        ("call +86 138 1234 5678", "call +86 138****5678"),
        ("from oR8sT1a2b3c4d5e6f7g8h9i0jKlM.", "from oR8s***jKlM."),
        ("GET /v1/history?phone=%2B86%20138%201234%205678 200", "GET /v1/history?phone=+86 138****5678 200"),
        ("GET /v1/history?phone=%2B86+138+1234+5678", "GET /v1/history?phone=+86+138****5678"),
        ("GET /v1/history?openid=oR8sT1a2b3c4d5e6f7g8h9i0j%4BlM", "GET /v1/history?openid=oR8s***jKlM"),
    ],
)
def test_every_way_of_writing_a_phone_number_or_an_openid_is_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_a_configured_secret_is_never_logged_wherever_a_client_put_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MALL_NOTIFY_ALIYUN_REPORT_SECRET", "report-secret/with spaces+1")
    monkeypatch.setenv("MALL_NOTIFY_WECHAT_SECRETS", '{"wx5f2a9c1d8e7b6a01": "oa-app-secret-42"}')
    settings = load_settings()
    redact(*settings.secrets())
    assert {"report-secret/with spaces+1", "oa-app-secret-42"} <= set(settings.secrets())
    stream = io.StringIO()
    configure_logging("INFO")
    monkeypatch.setattr(logging.getLogger().handlers[0], "stream", stream)
    get_logger("access").info('POST /receipts/aliyun/report-secret%2Fwith%20spaces%2B1 HTTP/1.1" 200')
    get_logger("access").info("GET /x?secret=x&s=report-secret%2Fwith+spaces%2B1")
    get_logger("access").info(
        "a body", extra=fields(body={"secret": "oa-app-secret-42"}, header="oa-app-secret-42")
    )
    written = stream.getvalue()
    assert "report-secret" not in written
    assert "oa-app-secret" not in written
    assert written.count("***") >= 4


def test_nested_values_and_tracebacks_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    configure_logging("INFO")
    monkeypatch.setattr(logging.getLogger().handlers[0], "stream", stream)
    try:
        raise ValueError("bad number 13812345678 for oR8sT1a2b3c4d5e6f7g8h9i0jKlM")
    except ValueError:
        get_logger("test").exception(
            "failed", extra={"phones": ["13912345678"], "body": {"touser": "oMp1a2b3c4d5e6f7g8h9i0jKlMnO"}}
        )
    text = stream.getvalue()
    for clear in (
        "13812345678",
        "13912345678",
        "oR8sT1a2b3c4d5e6f7g8h9i0jKlM",
        "oMp1a2b3c4d5e6f7g8h9i0jKlMnO",
    ):
        assert clear not in text
    line = json.loads(text)
    assert line["phones"] == ["139****5678"]
    assert line["body"] == {"touser": "oMp1***lMnO"}
    assert "bad number 138****5678 for oR8s***jKlM" in line["exc_info"]


def test_the_log_level_may_be_written_in_lower_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALL_NOTIFY_LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"


def test_the_local_broker_is_found_where_kafka_sh_wrote_its_address(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("MALL_NOTIFY_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("KAFKA_LOCAL_DIR", str(tmp_path))
    assert load_settings().kafka_bootstrap_servers == "127.0.0.1:19092"
    (tmp_path / "bootstrap").write_text("127.0.0.1:40123\n")
    assert load_settings().kafka_bootstrap_servers == "127.0.0.1:40123"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092")
    assert load_settings().kafka_bootstrap_servers == "kafka-1:9092"


def test_the_configuration_reference_is_generated_from_the_settings_and_up_to_date() -> None:
    reference = configuration_reference()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert name.upper() in reference
    assert (ROOT / "docs" / "CONFIGURATION.md").read_text() == reference, (
        "docs/CONFIGURATION.md is stale: mall-notify config-reference > docs/CONFIGURATION.md"
    )
