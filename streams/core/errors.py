"""Every exception mall-notify raises on purpose derives from :class:`MallNotifyError`, defined
here. The tree, in one place:

    MallNotifyError      the root
    ├── ConfigError          a data file (catalog, shop settings) or a document breaks a rule;
    │                        ``problems`` names each field
    ├── TopicsError          ``topics.yaml`` is missing or invalid
    ├── EventRejected        a record's bytes are not an event we understand; ``reason`` is the
    │                        dead-letter reason (invalid_json, schema_invalid, unknown_type)
    ├── MissingVariable      an event lacks a value a template needs (routing turns it into a skip)
    ├── UnreadableFile       core/validation: a file is missing or not YAML
    ├── Refused              core/sms_signatures: a signature or template review breaks a rule
    │   └── NotYours         the signature is another shop's
    ├── SettingsError        settings: an environment variable is invalid
    ├── NotOwned             runtime/state/store: the state of a partition the lane lost was asked for
    ├── StateDirInUse        runtime/state/store: another worker holds MALL_NOTIFY_STATE_DIR
    ├── PortInUse            runtime/worker: the worker's web port cannot be listened on
    ├── Unreadable           runtime/state/partition: a stored value or changelog record is no entry
    ├── NoTopic              runtime/follower: the cluster has no such topic (yet)
    ├── DatabaseUnavailable  runtime/database: PostgreSQL did not answer or refused the connection
    ├── KafkaUnavailable     ops/kafka_check: the cluster did not answer
    ├── MissingTopics        ops/kafka_check: the cluster lacks topics of the spec
    ├── NoAliyun             api/context: a call needs Aliyun and no AccessKey is configured
    ├── SecretsKeyError      core/credentials: MALL_NOTIFY_SECRETS_KEYS unusable, or a secret that
    │                        does not open with it
    ├── NoSecretsKey         ops/wechat_apps: a secret cannot be registered without the secrets keys
    ├── DemoProblem          devtools/demo: the demo's own files are unusable
    ├── CallFailed           channels/wechat: a WeChat call gave no usable answer (classified)
    ├── PushRefused          channels/wechat_push: a push that is not WeChat's
    ├── PushInvalid          channels/wechat_push: a verified push with a field WeChat never sends
    ├── AliyunCallFailed     channels/aliyun_sms: a call other than SendSms failed (classified)
    ├── ReportRefused        channels/aliyun_sms: a body that is not Aliyun's SmsReport (and
    │                        core/sms_review_reports: not its SignSmsReport / TemplateSmsReport)
    └── UrlRefused           channels/webhook: a webhook URL the platform does not call

Provider errors never reach the runtime as exceptions: channels answer with a classified
``SendResult``. Nothing in the core raises anything else on purpose: an exception of another type
is a bug, and the runtime dead-letters the record that met it with the reason ``internal_error``.
"""

from __future__ import annotations

from enum import StrEnum


class MallNotifyError(Exception):
    """The root of every exception mall-notify raises on purpose."""


class ConfigError(MallNotifyError):
    """A configuration file or document is invalid; the message names the file and the field."""

    def __init__(self, where: str, problems: list[str]) -> None:
        super().__init__(f"{where}: " + "; ".join(problems))
        self.problems = problems


class TopicsError(MallNotifyError):
    """``topics.yaml`` is missing or invalid; the message names the field."""


class RejectReason(StrEnum):
    """Why an event could not be parsed; the value is the dead-letter ``reason`` header."""

    INVALID_JSON = "invalid_json"
    SCHEMA_INVALID = "schema_invalid"
    UNKNOWN_TYPE = "unknown_type"


class EventRejected(MallNotifyError):
    """The bytes of a record are not an event we understand."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class MissingVariable(MallNotifyError):
    """The event lacks a value a template needs."""

    def __init__(self, variable: str) -> None:
        super().__init__(f"missing variable {variable}")
        self.variable = variable
