"""What the provider sandbox knows and remembers: apps, tokens, templates, received calls, faults."""

from __future__ import annotations

import itertools
import random
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

MASKED = "***"


class SeedTemplate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    template_id: str
    title: str
    keywords: list[str] = Field(min_length=1)


class SeedApp(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    appid: str
    secret: str
    templates: list[SeedTemplate] = Field(default_factory=list)
    unfollowed_openids: list[str] = Field(default_factory=list)


class Seed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    wechat_apps: list[SeedApp] = Field(default_factory=list)
    token_ttl_seconds: int = Field(default=7200, ge=1)


class Fault(BaseModel):
    """Make matching calls fail: with a WeChat errcode, an HTTP status, or by answering late."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="request path the fault applies to, e.g. /cgi-bin/message/template/send")
    errcode: int | None = None
    http_status: int | None = Field(default=None, ge=400, le=599)
    latency_ms: int = Field(default=0, ge=0, le=120_000)
    rate: float = Field(default=1.0, ge=0, le=1)
    count: int | None = Field(default=None, ge=1, description="how many calls it hits; unlimited if unset")


@dataclass
class Token:
    appid: str
    expires_at: float


@dataclass
class State:
    seed: Seed
    clock: Any = time.monotonic
    tokens: dict[str, Token] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    sent_client_msg_ids: dict[tuple[str, str], int] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    _msgids: itertools.count[int] = field(default_factory=lambda: itertools.count(2_000_000_001))

    @classmethod
    def from_file(cls, path: Path) -> State:
        return cls(Seed.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {}))

    def app(self, appid: str) -> SeedApp | None:
        return next((app for app in self.seed.wechat_apps if app.appid == appid), None)

    def current_token(self, appid: str) -> str | None:
        now = self.clock()
        return next((v for v, t in self.tokens.items() if t.appid == appid and t.expires_at > now), None)

    def issue_token(self, appid: str) -> str:
        for value in [v for v, t in self.tokens.items() if t.appid == appid]:
            del self.tokens[value]
        value = f"sbx_{secrets.token_urlsafe(24)}"
        self.tokens[value] = Token(appid, self.clock() + self.seed.token_ttl_seconds)
        return value

    def expire_tokens(self) -> None:
        """Make every issued token expired, as if two hours had passed."""
        for token in self.tokens.values():
            token.expires_at = self.clock() - 1

    def next_msgid(self) -> int:
        return next(self._msgids)

    def record(self, path: str, query: dict[str, str], body: Any) -> None:
        self.requests.append(
            {"path": path, "query": _masked(query), "body": _masked(body), "at": time.time()}
        )

    def take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path != path or random.random() >= fault.rate:
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
            return fault
        return None


def _masked(value: Any) -> Any:
    """Sandbox inspection never shows secrets or tokens, even the sandbox's own."""
    if isinstance(value, dict):
        return {k: MASKED if k in {"secret", "access_token"} else _masked(v) for k, v in value.items()}
    return value
