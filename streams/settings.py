"""The one frozen configuration of a mall-notify process, read from the environment at start."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from channels.base import ChannelName
from streams.core.errors import MallNotifyError

if TYPE_CHECKING:
    from channels.aliyun_sms import AliyunSmsConfig
    from streams.core.credentials import SecretBox

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WECHAT_API = "https://api.weixin.qq.com"
ENV_PREFIX = "MALL_NOTIFY_"
DEFAULT_SEND_CONCURRENCY = 256
LANE = (
    r"(router|buyers|deferred|retry|receipts|send-log|webhooks|sms-reviews"
    r"|send\.(wechat_oa|wechat_mp|aliyun_sms|webhook|codes))"
)
"""one lane's name in MALL_NOTIFY_LANES"""
DEFAULT_BOOTSTRAP = "127.0.0.1:19092"


def local_broker_address() -> str:
    """Where ``deploy/kafka-local/kafka.sh up`` says its broker listens (it takes another port when
    19092 is busy), or 127.0.0.1:19092 when no local broker was started."""
    state = Path(os.environ.get("KAFKA_LOCAL_DIR") or PROJECT_ROOT / ".local" / "kafka")
    try:
        return (state / "bootstrap").read_text().strip() or DEFAULT_BOOTSTRAP
    except OSError:
        return DEFAULT_BOOTSTRAP


def local_database_url() -> str | None:
    """Where ``deploy/postgres-local/postgres.sh up`` says its server listens, or None."""
    state = Path(os.environ.get("POSTGRES_LOCAL_DIR") or PROJECT_ROOT / ".local" / "postgres")
    try:
        return (state / "address").read_text().strip() or None
    except OSError:
        return None


ShopToken = SecretStr | list[SecretStr]


class Settings(BaseSettings):
    """Everything a worker, the CLI or the sandbox needs to know about its surroundings."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default_factory=local_broker_address,
        min_length=3,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS"),
        description="host:port[,host:port...] of the Kafka cluster; default: the local broker of "
        "deploy/kafka-local/kafka.sh (.local/kafka/bootstrap), else 127.0.0.1:19092",
    )
    database_url: SecretStr | None = Field(
        default_factory=lambda: SecretStr(url) if (url := local_database_url()) else None,
        description="PostgreSQL, the send log's store (postgresql://user:password@host:port/db); "
        "default: the local server of deploy/postgres-local/postgres.sh (.local/postgres/address); "
        "none: no send log",
    )
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="put in front of every topic name and consumer group (environments, test isolation)",
    )
    app_id: str = Field(
        default="mall-notify",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="the router's consumer group; the others add .send.<channel> and .retry",
    )
    kafka_session_timeout: float = Field(
        default=30.0, ge=6, le=300, description="seconds before a silent worker's partitions go to another"
    )
    receipt_ttl_hours: float = Field(
        default=72.0,
        gt=0,
        description="how long the receipts lane waits for a delivery's receipt (or a receipt's delivery)",
    )
    receipt_overdue_minutes: float = Field(
        default=30.0,
        gt=0,
        description="a delivered message still without a receipt after this long is overdue",
    )
    sms_report_wait_seconds: float = Field(
        default=600.0,
        gt=0,
        description="an SMS without Aliyun's report after this long is asked about (QuerySendDetails)",
    )
    sms_report_check_seconds: float = Field(
        default=60.0, gt=0, description="how often a worker looks for SMS whose report did not come"
    )
    sms_review_poll_seconds: float = Field(
        default=20.0,
        ge=0,
        description="how often the worker owning the reviews lane's partition asks Aliyun about the "
        "qualifications, signatures and templates still in review (a push may never come); 0: never",
    )
    sms_review_poll_pages: int = Field(
        default=10,
        ge=1,
        le=100,
        description="pages of 50 of QuerySmsSignList / QuerySmsTemplateList per round",
    )
    receipts_port: int = Field(default=8791, ge=1, le=65535, description="port of the receipts endpoint")
    wechat_push_token: SecretStr | None = Field(
        default=None,
        min_length=3,
        description="the Token of the WeChat accounts' server URL (消息推送): pushes are checked with it",
    )
    wechat_aes_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='JSON {"<appid>": "<EncodingAESKey>"}: accounts that push in safe mode (encrypted)',
    )
    aliyun_report_secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="the secret path part of the SmsReport URL configured at Aliyun: "
        "http(s)://<host>/receipts/aliyun/<secret> (Aliyun does not sign its pushes)",
    )
    ledger_ttl_hours: float = Field(
        default=336, gt=0, description="how long a delivered id is never sent again (keep outcomes that long)"
    )
    state_dir: Path = Field(
        default=PROJECT_ROOT / ".local" / "state",
        description="where a worker keeps the state of its partitions (RocksDB); one per worker, "
        "kept across restarts (a new or lost one is restored from the changelogs)",
    )
    state_cache_mb: int = Field(
        default=32,
        ge=4,
        le=65536,
        description="RocksDB block cache shared by every store of a worker, in MiB",
    )
    config_dir: Path = Field(
        default=PROJECT_ROOT / "config",
        description="catalog.yaml, topics.yaml, sample shops and events, the sandbox seed",
    )
    send_concurrency: dict[ChannelName, Annotated[int, Field(ge=1, le=10_000)]] = Field(
        default_factory=dict,
        description='deliveries in flight per channel, JSON {"aliyun_sms": 64}; others: 256',
    )
    lanes: str = Field(
        default="all",
        pattern=rf"^(all|{LANE}(,{LANE})*)$",
        description="the lanes this worker runs: all, or a comma list of router, buyers, deferred, "
        "send.<channel>, send.codes, retry, receipts, send-log, webhooks (send.webhook sends their calls), "
        "sms-reviews",
    )
    deferred_release_per_second: float = Field(
        default=200.0,
        ge=1,
        le=100_000,
        description="notices held by quiet hours a worker's deferred lane gives back per second at "
        "most: the morning's backlog goes out at this pace, not at once",
    )
    clock_file: Path | None = Field(
        default=None,
        description="demos and tests only: a file that moves the clock of the buyers and deferred lanes "
        "(what `mall-notify dev clock` writes), so quiet hours can be shown without waiting for the "
        "night; unset in production",
    )
    webhook_disable_after_seconds: float = Field(
        default=86400.0,
        gt=0,
        description="a webhook endpoint whose calls have ended dead-lettered for this long is switched off",
    )
    webhook_allowed_hosts: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$")]] = Field(
        default_factory=list,
        description="host:port of webhook receivers called even on a private address, over http too, "
        'JSON ["127.0.0.1:8780"]: the demo and the tests; empty in production',
    )
    send_log_keep_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="days of the send log kept in PostgreSQL (older days are dropped whole)",
    )
    code_validity_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="a verification code older than this (from its event's time) when its sender gets "
        "to it is not sent: skipped as expired",
    )
    router_batch: int = Field(default=500, ge=1, le=10_000, description="events routed per batch at most")
    stall_seconds: float = Field(
        default=60.0,
        gt=0,
        description="a partition with a record unfinished this long, or with lag and no progress this "
        "long, is stalled (/readyz 503)",
    )
    shutdown_grace_seconds: float = Field(
        default=15.0, gt=0, le=600, description="how long a stop waits for records in flight"
    )
    web_host: str = Field(default="127.0.0.1", description="interface of the worker's /metrics and /readyz")
    web_port: int = Field(
        default=6066, ge=1, le=65535, description="port of the worker's /metrics and /readyz"
    )
    wechat_oa_api_base: HttpUrl = Field(default=HttpUrl(WECHAT_API), description="WeChat API for OA sends")
    wechat_mp_api_base: HttpUrl = Field(default=HttpUrl(WECHAT_API), description="WeChat API for MP sends")
    wechat_mp_state: Literal["developer", "trial", "formal"] = Field(
        default="formal", description="miniprogram_state of MP subscribe messages"
    )
    wechat_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='development seed only: JSON object {"appid": "secret"}; merchants\' apps are '
        "registered at run time (`mall-notify wechat register`, the admin API), which wins over it",
    )
    secrets_keys: SecretStr | None = Field(
        default=None,
        description="the keys the merchants' AppSecrets are sealed with (AES-256-GCM): id:base64 of 32 "
        "bytes, comma-separated, the first sealing new ones (rotate: put a new one first, run "
        "`mall-notify wechat reseal`, then drop the old)",
    )
    wechat_app_concurrency: int = Field(default=32, ge=1, description="calls in flight per appid")
    wechat_app_rate_per_second: float = Field(
        default=100.0, gt=0, description="calls started per second per appid"
    )
    aliyun_sms_endpoint: str = Field(default="dysmsapi.aliyuncs.com", min_length=1, description="host[:port]")
    aliyun_sms_protocol: Literal["https", "http"] = Field(
        default="https", description="http only for the sandbox"
    )
    aliyun_access_key_id: str = Field(
        default="",
        description="the platform's AccessKey id, unless one is registered at run time (`mall-notify "
        "aliyun register`, which wins); none either way: SMS deliveries end dead-lettered as "
        "channel_not_configured",
    )
    aliyun_access_key_secret: SecretStr = Field(
        default=SecretStr(""), description="the AccessKey's secret; never logged"
    )
    api_host: str = Field(
        default="127.0.0.1", description="interface of the admin API (a warning when beyond loopback)"
    )
    api_port: int = Field(default=8790, ge=1, le=65535, description="port of the admin API")
    recipient_key: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="the platform's secret for the keyed hash of each outcome's recipient (`history`); "
        "without it outcomes carry no recipient and `history` finds nothing. Keep it: a new key starts "
        "a new history",
    )
    api_platform_token: SecretStr | None = Field(
        default=None,
        description="bearer token of the platform admin: `sha256:<hex>` (`mall-notify hash-token`) or plain",
    )
    api_shop_tokens: dict[str, ShopToken] = Field(
        default_factory=dict,
        description='JSON object {"<shop id>": "<token>" or ["<token>", ...]}: several during a rotation; '
        "each a `sha256:<hex>` hash or plain",
    )
    http_connect_timeout: float = Field(default=3.0, gt=0, description="seconds to connect to a provider")
    http_total_timeout: float = Field(
        default=10.0, gt=0, description="seconds a provider call may take in all"
    )
    log_level: Annotated[str, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)] = Field(
        default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="debug, info, warning or error"
    )

    def secrets(self) -> list[str]:
        """Every configured secret and token, for the logs to redact."""
        found: list[str] = []

        def collect(value: object) -> None:
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, dict | list):
                for item in value.values() if isinstance(value, dict) else value:
                    collect(item)

        for name in type(self).model_fields:
            collect(getattr(self, name))
        return [secret for secret in found if secret]

    @field_validator("secrets_keys")
    @classmethod
    def _keys(cls, keys: SecretStr | None) -> SecretStr | None:
        from streams.core.credentials import SecretBox, SecretsKeyError

        if keys is not None:
            try:
                SecretBox.parse(keys.get_secret_value())
            except SecretsKeyError as exc:
                raise ValueError(str(exc)) from None
        return keys

    def secret_box(self) -> SecretBox | None:
        """The merchants' secrets' keys (None when not configured)."""
        from streams.core.credentials import SecretBox

        return SecretBox.parse(self.secrets_keys.get_secret_value()) if self.secrets_keys else None

    def aliyun_sms(self, registered: tuple[str, SecretStr] | None = None) -> AliyunSmsConfig | None:
        """The Aliyun SMS account's configuration with the ``registered`` AccessKey (id, secret),
        else the configured one; None without either."""
        from channels.aliyun_sms import AliyunSmsConfig  # the SDK is heavy; most commands never need it

        key_id, secret = registered or (self.aliyun_access_key_id, self.aliyun_access_key_secret)
        if not key_id:
            return None
        return AliyunSmsConfig(
            access_key_id=key_id,
            access_key_secret=secret,
            endpoint=self.aliyun_sms_endpoint,
            protocol=self.aliyun_sms_protocol,
            connect_timeout_ms=int(self.http_connect_timeout * 1000),
            read_timeout_ms=int(self.http_total_timeout * 1000),
        )

    def concurrency(self, channel: ChannelName) -> int:
        return self.send_concurrency.get(channel, DEFAULT_SEND_CONCURRENCY)

    def runs(self, lane: str) -> bool:
        """Whether this worker runs ``lane`` (router, retry, send.<channel>)."""
        return self.lanes == "all" or lane in self.lanes.split(",")


class SettingsError(MallNotifyError):
    """A setting is invalid; the message names the environment variable and why."""


def load_settings() -> Settings:
    """Read the settings, turning pydantic's report into one message per bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(f"invalid settings: {describe_settings_error(exc)}") from None
    except SourceError as exc:  # a complex value (JSON) that does not parse
        match = re.search(r'field "(\w+)"', str(exc))
        variable = ENV_PREFIX + (match[1].upper() if match else "?")
        raise SettingsError(f"invalid settings: {variable}: not valid JSON") from None


def describe_settings_error(exc: ValidationError) -> str:
    """Each problem named by the environment variable that sets the field."""
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        variable = field if field.isupper() else ENV_PREFIX + field.upper()
        problems.append(f"{variable}: {error['msg']}")
    return "; ".join(problems)


def configuration_reference() -> str:
    """docs/CONFIGURATION.md: every variable, its default and its meaning, from the model above
    (``mall-notify config-reference`` prints it; a test keeps the file equal to it)."""
    rows = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        variable = alias.choices[0] if isinstance(alias, AliasChoices) else ENV_PREFIX + name.upper()
        rows.append(f"| `{variable}` | {_default_of(name, field.default)} | {field.description or ''} |")
    return "\n".join(
        [
            "# Configuration reference",
            "",
            "Every setting of a mall-notify process (worker, admin API, command line, sandbox) comes from",
            "the environment, is checked when the process starts, and a bad value is refused naming its",
            "variable. Generated from `streams/settings.py` by `mall-notify config-reference`.",
            "",
            "| variable | default | meaning |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )


def _default_of(name: str, default: object) -> str:
    if name == "kafka_bootstrap_servers":
        return "the local broker, else `127.0.0.1:19092`"
    if name == "database_url":
        return "the local server, else none"
    if isinstance(default, Path) and default.is_relative_to(PROJECT_ROOT):
        return f"`<repo>/{default.relative_to(PROJECT_ROOT)}`"
    if isinstance(default, SecretStr):
        return "empty" if not default.get_secret_value() else "(secret)"
    if default is None or default == "":
        return "empty" if default == "" else "none"
    if str(default) == "PydanticUndefined":  # a default_factory: the JSON maps start empty
        return "`{}`"
    return f"`{default}`"
