"""What the provider sandbox knows and remembers: apps, tokens, templates, subscriptions, SMS
signatures and templates, per-phone throttles, received calls and injected faults."""

from __future__ import annotations

import itertools
import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

MASKED = "***"
SENSITIVE = frozenset({"secret", "access_token", "Authorization", "authorization"})


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SeedTemplate(Frozen):
    template_id: str
    title: str
    keywords: list[str] = Field(min_length=1)


class LibraryTemplate(Frozen):
    """A template of WeChat's libraries that an OA can add with ``api_add_template``: a numeric
    ``short_id`` for the category template library, ``OPENTM…`` for the industry library; its
    keywords by code, with the names the call must give."""

    short_id: str
    title: str
    keywords: dict[str, str] = Field(min_length=1)
    """code (``character_string1``) -> name (``订单编号``)"""


class SubscribeLibraryTemplate(Frozen):
    """A Mini Program subscribe-message title (``tid``) an MP can add with ``newtmpl/addtemplate``,
    choosing keywords by id: keyword ``thing2`` has the id 2."""

    tid: str
    title: str
    keywords: list[str] = Field(min_length=1)


class Industry(Frozen):
    first_class: str
    second_class: str


class SeedApp(Frozen):
    appid: str
    secret: str
    kind: Literal["oa", "mp"] = "oa"
    seeded: bool = Field(
        default=True,
        description="its secret is in the development seed (MALL_NOTIFY_WECHAT_SECRETS) of the local "
        "stack; false: the platform registers it at run time, as a newly onboarded merchant's",
    )
    templates: list[SeedTemplate] = Field(default_factory=list)
    unfollowed_openids: list[str] = Field(default_factory=list)
    subscriptions: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="MP: openid -> template_id -> messages the user accepted"
    )
    pages: list[str] = Field(default_factory=list, description="MP: page paths that exist")
    industries: list[Industry] = Field(
        default_factory=list, description="OA: primary and secondary industry (template/get_industry)"
    )
    categories: list[str] = Field(
        default_factory=list, description="MP: its service categories, second level (newtmpl/getcategory)"
    )


ReviewStatus = Literal["reviewing", "approved", "rejected"]


class SeedSign(Frozen):
    name: str
    status: ReviewStatus = "approved"
    reason: str = ""
    submitted_at: float | None = Field(
        default=None, description="when CreateSmsSign came; seeded ones change only by hand (set_status)"
    )
    order_id: str = ""
    qualification_id: int | None = None
    letter_id: int | None = None
    third_party: bool = False


class SeedSmsTemplate(Frozen):
    code: str
    name: str
    content: str
    status: ReviewStatus = "approved"
    reason: str = ""
    submitted_at: float | None = Field(
        default=None, description="when CreateSmsTemplate came; seeded ones change only by hand"
    )
    order_id: str = ""
    template_type: int = 1
    related_sign: str = ""


class Qualification(Frozen):
    """A qualification SubmitSmsQualification took (the people's details are not kept)."""

    group_id: int
    work_order_id: int
    name: str
    company_name: str
    organization_code: str
    use_by_self: bool
    status: Literal["INIT", "PASS", "NOT_PASS", "NOT_FINISH", "CANCEL"] = "INIT"
    remark: str = ""
    submitted_at: float


class Letter(Frozen):
    """An authorization letter CreateSmsAuthorizationLetter took."""

    letter_id: int
    name: str
    company: str
    organization_code: str
    signs: list[str]
    valid_until: str


class Review(Frozen):
    """How Aliyun's review of a new signature or template ends in the sandbox: after
    ``after_seconds``, rejected when its name or content holds a ``refused_words`` entry, else approved."""

    after_seconds: float = Field(default=2.0, ge=0)
    refused_words: list[str] = Field(default_factory=lambda: ["测试", "test"])


class Throttle(Frozen):
    per_minute: int = 1
    per_hour: int = 5
    per_day: int = 10


class AliyunSeed(Frozen):
    access_keys: dict[str, str] = Field(default_factory=dict, description="AccessKey id -> secret")
    signs: list[SeedSign] = Field(default_factory=list)
    templates: list[SeedSmsTemplate] = Field(default_factory=list)
    throttle: Throttle = Throttle()
    review: Review = Review()


class ReceiptSeed(Frozen):
    """What the sandbox, as WeChat and Aliyun, knows of the receipts endpoint it pushes to (the
    URL itself is the sandbox's ``--receipts-url``)."""

    wechat_token: str = "sandbox-push-token"
    aes_keys: dict[str, str] = Field(default_factory=dict, description="appid -> EncodingAESKey (safe mode)")
    aliyun_secret: str = "sandbox-report-secret-0001"
    delay_seconds: float = Field(default=0.5, ge=0)
    loss_rate: float = Field(default=0.0, ge=0, le=1)
    blocked_openids: list[str] = Field(default_factory=list, description="users who blocked the account")
    unreachable_phones: list[str] = Field(default_factory=list, description="phones switched off")


class Seed(Frozen):
    receipts: ReceiptSeed = ReceiptSeed()
    wechat_apps: list[SeedApp] = Field(default_factory=list)
    template_library: list[LibraryTemplate] = Field(default_factory=list)
    subscribe_library: list[SubscribeLibraryTemplate] = Field(default_factory=list)
    token_ttl_seconds: int = Field(default=7200, ge=1)
    max_oa_templates: int = 25
    aliyun: AliyunSeed = AliyunSeed()


class Fault(BaseModel):
    """Make matching calls fail. ``target`` is a request path (WeChat) or an Aliyun action name."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(description="e.g. /cgi-bin/message/template/send, or SendSms")
    errcode: int | None = Field(default=None, description="WeChat errcode to answer with")
    aliyun_code: str | None = Field(default=None, description="Aliyun Code to answer with")
    http_status: int | None = Field(default=None, ge=400, le=599)
    latency_ms: int = Field(default=0, ge=0, le=120_000, description="answer late (a timeout if long enough)")
    reset: bool = Field(default=False, description="drop the connection without an answer")
    hold_ms: int = Field(
        default=0,
        ge=0,
        le=120_000,
        description="carry the call out, then hold its answer this long (the provider acted; the "
        "caller learns it late, or never if it gives up or dies meanwhile)",
    )
    rate: float = Field(default=1.0, ge=0, le=1, description="share of matching calls that fail")
    count: int | None = Field(default=None, ge=1, description="how many calls it hits; unlimited if unset")
    duration_seconds: float | None = Field(default=None, gt=0, description="an outage window from now")
    expires_at: float | None = None


@dataclass
class Token:
    appid: str
    expires_at: float


@dataclass
class WeChatState:
    apps: dict[str, SeedApp]
    templates: dict[str, dict[str, SeedTemplate]]
    subscriptions: dict[tuple[str, str, str], int]
    tokens: dict[str, Token] = field(default_factory=dict)
    sent_client_msg_ids: dict[tuple[str, str, str], tuple[int, float]] = field(default_factory=dict)
    """(appid, openid, client_msg_id) -> (msgid, when)"""


@dataclass
class AliyunState:
    seed: AliyunSeed
    sent_unreachable: frozenset[str]
    """phones switched off: their SMS fail (receipts and QuerySendDetails)"""
    signs: dict[str, SeedSign]
    templates: dict[str, SeedSmsTemplate]
    sent_at: dict[str, deque[float]] = field(default_factory=dict)
    sent_details: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    """phone -> the SMS sent to it (QuerySendDetails)"""
    biz_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(time.time_ns() // 1000))
    """unique across sandbox restarts, as Aliyun's are"""
    qualifications: dict[int, Qualification] = field(default_factory=dict)
    letters: dict[int, Letter] = field(default_factory=dict)
    phone_codes: dict[str, str] = field(default_factory=dict)
    """an administrator's phone (11 digits) -> the code RequiredPhoneCode sent it"""
    disabled_keys: set[str] = field(default_factory=set)
    """AccessKeys switched off (as in RAM): calls signed with them are refused"""
    review_pushes: bool = True
    """whether the ends of reviews are pushed (SignSmsReport, TemplateSmsReport)"""
    reported: set[tuple[str, str]] = field(default_factory=set)
    """the reviews whose end was pushed"""
    ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(10_000_000 + time.time_ns() % 10**7)
    )
    """qualification, letter and order ids"""


@dataclass
class State:
    seed: Seed
    clock: Any = time.monotonic
    wechat: WeChatState = field(init=False)
    aliyun: AliyunState = field(init=False)
    requests: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[dict[str, Any]] = field(default_factory=list)
    """requests that broke their provider's contract, and answers of the sandbox's that did"""
    messages: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    receipts_url: str | None = None
    """where receipts are pushed (None: nowhere)"""
    pushes: deque[tuple[float, dict[str, Any]]] = field(default_factory=deque)
    pushed: list[dict[str, Any]] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    """the webhook calls a merchant's endpoint of the sandbox took (see channels.sandbox.merchant)"""
    _msgids: itertools.count[int] = field(default_factory=lambda: itertools.count(time.time_ns() // 1000))
    """unique across sandbox restarts, as WeChat's msgids are"""

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to the seed: forget calls, messages, faults, tokens and everything created since."""
        apps = {app.appid: app for app in self.seed.wechat_apps}
        subscriptions = {
            (app.appid, openid, template_id): count
            for app in self.seed.wechat_apps
            for openid, accepted in app.subscriptions.items()
            for template_id, count in accepted.items()
        }
        self.wechat = WeChatState(
            apps,
            {app.appid: {t.template_id: t for t in app.templates} for app in apps.values()},
            subscriptions,
        )
        aliyun = self.seed.aliyun
        self.aliyun = AliyunState(
            aliyun,
            frozenset(self.seed.receipts.unreachable_phones),
            {s.name: s for s in aliyun.signs},
            {t.code: t for t in aliyun.templates},
        )
        self.requests.clear()
        self.breaches.clear()
        self.messages.clear()
        self.faults.clear()
        self.hooks.clear()

    @classmethod
    def from_file(cls, path: Path) -> State:
        return cls.from_document(yaml.safe_load(path.read_text(encoding="utf-8")))

    @classmethod
    def from_document(cls, document: object) -> State:
        """From the seed as read from YAML (ValidationError names a bad field)."""
        return cls(Seed.model_validate(document or {}))

    def current_token(self, appid: str) -> str | None:
        now = self.clock()
        tokens = self.wechat.tokens.items()
        return next((v for v, t in tokens if t.appid == appid and t.expires_at > now), None)

    def issue_token(self, appid: str) -> str:
        tokens = self.wechat.tokens
        for value in [v for v, t in tokens.items() if t.appid == appid]:
            del tokens[value]
        value = f"sbx_{secrets.token_urlsafe(24)}"
        tokens[value] = Token(appid, self.clock() + self.seed.token_ttl_seconds)
        return value

    def expire_tokens(self) -> None:
        """Make every issued token expired, as if two hours had passed."""
        for token in self.wechat.tokens.values():
            token.expires_at = self.clock() - 1

    def next_msgid(self) -> int:
        return next(self._msgids)

    def record(self, target: str, query: dict[str, str], body: Any) -> None:
        """Keep a call as it came (masked when it is shown: recording stays cheap under load)."""
        self.requests.append({"path": target, "query": query, "body": body, "at": time.time()})

    def add_fault(self, fault: Fault) -> Fault:
        if fault.duration_seconds is not None:
            fault = fault.model_copy(update={"expires_at": self.clock() + fault.duration_seconds})
        self.faults.append(fault)
        return fault

    def take_fault(self, target: str) -> Fault | None:
        now = self.clock()
        self.faults[:] = [f for f in self.faults if f.expires_at is None or f.expires_at > now]
        for fault in self.faults:
            if fault.target != target or random.random() >= fault.rate:
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
            return fault
        return None


def masked(value: Any) -> Any:
    """Sandbox inspection never shows secrets, tokens or signatures, even the sandbox's own."""
    if isinstance(value, dict):
        return {k: MASKED if k in SENSITIVE else masked(v) for k, v in value.items()}
    return value
