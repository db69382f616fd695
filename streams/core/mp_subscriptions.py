"""What a buyer allowed a shop's Mini Program to send them: its subscribe messages. Pure.

WeChat's rules, from its documentation:
- *one-time* subscriptions (一次性订阅): each acceptance allows one message of that template, with
  no time limit, and acceptances add up; WeChat has no API that says how many are left, so the
  sender keeps the count
  (https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/subscribe-message-overview.html);
- *long-term* subscriptions (长期订阅, for public services only): one acceptance allows every
  later message (same page);
- the subscription panel (``wx.requestSubscribeMessage``) answers per template id ``accept``
  (``acceptWithAudio`` / ``acceptWithAlert`` when the buyer also chose a reminder), ``reject``,
  ``ban`` (WeChat banned the template) or ``filter`` (another template of the same title was asked
  for); one call asks for one-time or long-term templates, never both
  (https://developers.weixin.qq.com/miniprogram/dev/api/open-api/subscribe-message/wx.requestSubscribeMessage.html);
- a send refused with 43101 (``user refuse to accept the msg``) means the buyer has none left
  (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html).

A ``reject`` takes back a long-term subscription; it leaves one-time acceptances given before
(each was a separate consent, and WeChat still honours them).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import orjson
from pydantic import BaseModel, ConfigDict

from channels.base import ChannelName
from streams.core.catalog import Catalog
from streams.core.events import MpSubscriptionAnswered, envelope
from streams.core.shops import ShopRules

ACCEPTED = frozenset({"accept", "acceptWithAudio", "acceptWithAlert"})
MOST_ONE_TIME = 10_000
"""one-time acceptances kept per buyer and template, at most (a buggy front end cannot overflow it)"""
NO_SUBSCRIPTION = "no_subscription"
"""the reason of a delivery skipped because its buyer has no acceptance left for its template"""
KIND_HEADER = "mall-notify-kind"
ANSWER_KIND = b"mp_subscription"
ANSWER_TYPE = "mp_subscription.answered"
"""the header that tells a buyer's answer apart from a delivery on the Mini Program's send topic"""
_PACKED = struct.Struct(">IB")


@dataclass(frozen=True, slots=True)
class Allowance:
    """What a buyer allowed for one template: one-time messages left, and a long-term subscription."""

    one_time: int = 0
    long_term: bool = False

    @property
    def allows(self) -> bool:
        return self.long_term or self.one_time > 0

    def answered(self, answer: str, long_term: bool) -> Allowance:
        """The allowance after the buyer's answer on the subscription panel."""
        if answer in ACCEPTED:
            if long_term:
                return replace(self, long_term=True)
            return replace(self, one_time=min(self.one_time + 1, MOST_ONE_TIME))
        if answer == "reject" and long_term:
            return replace(self, long_term=False)
        return self  # a one-time reject, ban, filter: nothing given, nothing taken

    def used(self) -> Allowance:
        """The allowance after a message of the template was sent."""
        return self if self.long_term else replace(self, one_time=max(self.one_time - 1, 0))

    def pack(self) -> bytes:
        return _PACKED.pack(self.one_time, self.long_term)

    @classmethod
    def unpack(cls, payload: bytes) -> Allowance:
        if len(payload) != _PACKED.size:
            return NOTHING
        one_time, long_term = _PACKED.unpack(payload)
        return cls(one_time, bool(long_term))


NOTHING = Allowance()
"""no acceptance: what a buyer who never answered, or who WeChat says has none left, has"""


class Answers(BaseModel):
    """A buyer's answers as the router forwards them to the Mini Program's sender: keyed by the
    buyer (the record's key), so without the openid."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    shop_id: int
    results: dict[str, str]
    long_term: bool
    answered_at: datetime

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    def summary(self) -> str:
        """``mp_subscription_answered: 2 accepted, 1 rejected``, the event's outcome."""
        accepted = sum(answer in ACCEPTED for answer in self.results.values())
        others = len(self.results) - accepted
        return f"mp_subscription_answered: {accepted} accepted, {others} not"


def subscribe_templates(
    shop: ShopRules, catalog: Catalog, scenes: list[str]
) -> tuple[dict[str, str], list[str]]:
    """For the mall's Mini Program: the template id to ask the buyer for, per scene the shop sends on
    its Mini Program, and the scenes it does not (off there, or no template). ValueError names a
    scene the catalog does not have."""
    unknown = [scene for scene in scenes if scene not in catalog.scenes]
    if unknown:
        raise ValueError(f"scenes: no such scene {', '.join(unknown)}")
    templates: dict[str, str] = {}
    for scene in scenes:
        rule = shop.scenes.get(scene, {}).get(ChannelName.WECHAT_MP)
        if rule is not None and rule.enabled and rule.template_id:
            templates[scene] = rule.template_id
    return templates, [scene for scene in scenes if scene not in templates]


def answers_of(
    openid: str, results: Mapping[str, str], now: datetime, long_term: bool = False
) -> MpSubscriptionAnswered:
    """A buyer's answers as the mall's backend reports them (validated as the event's data)."""
    return MpSubscriptionAnswered.model_validate(
        {"openid": openid, "results": dict(results), "long_term": long_term, "answered_at": now.isoformat()}
    )


def answered_event(
    shop_id: int, answered: MpSubscriptionAnswered, source: str, now: datetime
) -> tuple[str, bytes]:
    """The ``mp_subscription.answered`` event of a buyer's answers, as the mall's backend publishes
    it: its id, and the record's value."""
    event_id = f"mps-{uuid.uuid4().hex}"
    data = answered.model_dump(mode="json")
    return event_id, envelope(event_id, ANSWER_TYPE, source, shop_id, data, now)
