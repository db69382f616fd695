"""What a buyer lets the mall's shops send them, and how much marketing a buyer gets a day. Pure.

A buyer (the mall's user id, the same in every shop) says **no** per category of notice
(``transactional``, ``marketing``) and per channel, for one shop or for the whole mall
(``preferences.changed`` events); a ``security`` notice (a verification code) cannot be refused.
A shop caps the marketing messages one buyer gets from it a day (the mall's day, Asia/Shanghai).

The router sends every buyer notice but the codes, as one :class:`Notice` (a scene's dispatches
for one buyer) keyed by the buyer, to the buyers' topic; the buyers lane keeps each buyer's
choices and counts and lets each dispatch through or ends it ``skipped`` as ``opted_out`` or
``frequency_cap``. A notice is counted once, whatever rereads it: the day's entry keeps which
notices it counted.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter

from channels.base import ChannelName
from streams.core.events import PreferencesChanged, envelope
from streams.core.quiet_hours import Window, minute_of
from streams.core.rendering import MALL_TIME_ZONE

OPTED_OUT = "opted_out"
FREQUENCY_CAP = "frequency_cap"
PLATFORM = "platform"
"""the scope of a choice made for every shop of the mall"""
NOTICE_KIND = b"notice"
CHOICES_KIND = b"preferences"
"""the kinds of record on the buyers' topic (header ``mall-notify-kind``)"""
_DIGEST_BYTES = 8


CATEGORY_BITS = {"transactional": 1, "marketing": 2}
CHANNEL_BITS = {ChannelName.WECHAT_OA: 4, ChannelName.WECHAT_MP: 8, ChannelName.ALIYUN_SMS: 16}
_PACKED = struct.Struct(">BdHH")
_PACKED_BEFORE_QUIET_HOURS = struct.Struct(">Bd")
NOT_SAID = 0xFFFF
"""a quiet hours' minute the buyer did not set (the shop's window holds)"""
NO_QUIET_HOURS = "none"


def quiet_minutes(said: str | None) -> tuple[int, int]:
    """A buyer's quiet hours as minutes: ``"23:00-07:00"``, ``"none"`` (0, 0: nothing held) or None
    (not said)."""
    if said is None:
        return NOT_SAID, NOT_SAID
    if said == NO_QUIET_HOURS:
        return 0, 0
    start, _, end = said.partition("-")
    return minute_of(start), minute_of(end)


@dataclass(frozen=True, slots=True)
class Choices:
    """A buyer's no's in one scope (a shop, or the whole mall), as bits: what the buyers lane reads
    for every notice is one small struct, not a document."""

    refused: int = 0
    """the bits of the categories (CATEGORY_BITS) and channels (CHANNEL_BITS) refused"""
    changed_at: float = 0.0
    """when the buyer said it (0: never)"""
    quiet_start: int = NOT_SAID
    quiet_end: int = NOT_SAID
    """the buyer's own quiet hours (minutes of the day; equal: none at all; NOT_SAID: the shop's)"""

    @classmethod
    def of(cls, said: PreferencesChanged | ScopeChoices | None) -> Choices:
        """The choices of an event, or as the send log's database shows them (None: never said)."""
        if said is None:
            return NO_CHOICES
        bits = sum(CATEGORY_BITS.get(c, 0) for c in set(said.categories_off))
        bits += sum(CHANNEL_BITS.get(ChannelName(c), 0) for c in set(said.channels_off))
        quiet = str(said.quiet_hours) if said.quiet_hours is not None else None
        return cls(bits, said.changed_at.timestamp(), *quiet_minutes(quiet))

    def pack(self) -> bytes:
        return _PACKED.pack(self.refused, self.changed_at, self.quiet_start, self.quiet_end)

    @classmethod
    def unpack(cls, payload: bytes) -> Choices:
        if len(payload) == _PACKED_BEFORE_QUIET_HOURS.size:  # kept before buyers had quiet hours
            return cls(*_PACKED_BEFORE_QUIET_HOURS.unpack(payload))
        return cls(*_PACKED.unpack(payload))

    def window(self, shop: Window) -> Window | None:
        """The buyer's quiet hours in place of the shop's ``shop`` (None: this scope said nothing)."""
        if self.quiet_start == NOT_SAID:
            return None
        return Window(self.quiet_start, self.quiet_end, shop.zone)

    def newer_than(self, other: Choices) -> bool:
        """Whether these choices replace ``other`` (an older change read late never does)."""
        return self.changed_at >= other.changed_at

    def refuses(self, category: str, channel: ChannelName) -> str | None:
        if self.refused & CATEGORY_BITS.get(category, 0):
            return f"{category} notices"
        if self.refused & CHANNEL_BITS.get(channel, 0):
            return channel.value
        return None


NO_CHOICES = Choices()


def quiet_window(shop_window: Window, shop: Choices, platform: Choices) -> Window:
    """The window that holds a buyer's notice: the buyer's own for this shop, else for the whole
    mall, else the shop's (one whose start is its end holds nothing)."""
    return shop.window(shop_window) or platform.window(shop_window) or shop_window


def refusal(category: str, channel: ChannelName, shop: Choices, platform: Choices) -> str | None:
    """Why the buyer does not want this (``opted_out: marketing notices from the mall``), or None.
    A security notice is always let through."""
    if category == "security":
        return None
    for scope, choices in (("the mall", platform), ("this shop", shop)):
        if not choices.refused:
            continue
        refused = choices.refuses(category, channel)
        if refused is not None:
            return f"{OPTED_OUT}: {refused} from {scope}"
    return None


@dataclass(frozen=True, slots=True)
class Send:
    """One dispatch of a notice as its send topic takes it: the buyers lane passes it on as it is."""

    channel: ChannelName
    key: str
    """its key on the send topic (the event's, so one order's stay in order; the buyer's on the
    Mini Program)"""
    dispatch: str
    """the dispatch's JSON (:class:`~streams.core.dispatch.Dispatch`), read only when it is skipped"""


@dataclass(frozen=True, slots=True)
class Notice:
    """One scene's dispatches for one buyer: decided together, counted once."""

    user_id: str
    shop_id: int
    event_id: str
    scene: str
    category: str
    daily_cap: int | None
    """the shop's cap on notices of this category a buyer gets a day (None: none)"""
    sends: list[Send]
    quiet: Window | None = None
    """the shop's quiet hours, when it holds this category in them"""
    valid_until: float | None = None
    """when the notice stops being worth sending (epoch seconds; None: never)"""
    deferred_until: float | None = None
    """a notice held by quiet hours: until when (epoch seconds)"""
    fallback: bool = False
    """first_reachable: the sends are tried one after the other, in order, until one reaches the
    buyer (see :mod:`streams.core.fallback`); else all go at once"""

    @property
    def notice_id(self) -> str:
        return notice_id(self.event_id, self.scene)

    def to_json(self) -> bytes:
        return orjson.dumps(self)


def notice_id(event_id: str, scene: str) -> str:
    """A notice's id: its event's and its scene's (the same for every copy of the event)."""
    return f"{event_id}|{scene}"


_NOTICE: TypeAdapter[Notice] = TypeAdapter(Notice)


def parse_notice(raw: bytes | None) -> Notice:
    """A buyers'-topic notice; raises pydantic's ValidationError."""
    return _NOTICE.validate_json(raw or b"", strict=True)


def day_of(at: datetime) -> str:
    return at.astimezone(MALL_TIME_ZONE).strftime("%Y%m%d")


@dataclass(frozen=True, slots=True)
class DayCount:
    """The notices of one category a buyer got from one shop on one day (digests of their ids)."""

    day: str
    counted: tuple[bytes, ...] = ()

    def pack(self) -> bytes:
        return self.day.encode() + b"".join(self.counted)

    @classmethod
    def unpack(cls, payload: bytes) -> DayCount:
        day, rest = payload[:8].decode(), payload[8:]
        return cls(day, tuple(rest[i : i + _DIGEST_BYTES] for i in range(0, len(rest), _DIGEST_BYTES)))

    def on(self, day: str) -> DayCount:
        """The count as it stands on ``day`` (a new day starts at none)."""
        return self if self.day == day else DayCount(day)


def digest(notice_id: str) -> bytes:
    return hashlib.blake2b(notice_id.encode(), digest_size=_DIGEST_BYTES).digest()


def admit(count: DayCount, notice_id: str, cap: int | None) -> tuple[bool, DayCount]:
    """Whether a notice may go out under the cap, and the count after it. A notice counted before
    (read again) goes out again without counting: its senders' ledgers drop the copies."""
    if cap is None:
        return True, count
    mark = digest(notice_id)
    if mark in count.counted:
        return True, count
    if len(count.counted) >= cap:
        return False, count
    return True, DayCount(count.day, (*count.counted, mark))


def scope_of(changed: PreferencesChanged, shop_id: int) -> str:
    """Where a buyer's word holds: ``platform`` (every shop), or the shop's id."""
    return PLATFORM if changed.scope == PLATFORM else str(shop_id)


def choices_summary(changed: PreferencesChanged, shop_id: int) -> str:
    """What a preferences event says, as its outcome's reason (no user id: outcomes are read widely)."""
    scope = "every shop" if changed.scope == PLATFORM else f"shop {shop_id}"
    refused = [*changed.categories_off, *changed.channels_off]
    summary = f"preferences for {scope}: " + (", ".join(refused) + " off" if refused else "everything on")
    if changed.quiet_hours == NO_QUIET_HOURS:
        return summary + "; no quiet hours"
    return summary + (f"; quiet hours {changed.quiet_hours}" if changed.quiet_hours else "")


PREFERENCES_TYPE = "preferences.changed"


def preferences_event(shop_id: int, changed: PreferencesChanged, source: str) -> tuple[str, bytes]:
    """The ``preferences.changed`` event of a buyer's choices, as the mall publishes it: its id, and
    the record's value (keyed by the buyer's user id)."""
    event_id = f"prf-{uuid.uuid4().hex}"
    data = changed.model_dump(mode="json")
    return event_id, envelope(event_id, PREFERENCES_TYPE, source, shop_id, data, changed.changed_at)


class ScopeChoices(BaseModel):
    categories_off: list[str]
    channels_off: list[str]
    quiet_hours: str | None = None
    """the buyer's own quiet hours (``23:00-07:00``), ``none``, or None: the shop's"""
    changed_at: datetime


class BuyerChoices(BaseModel):
    """What a buyer refuses in a shop and in the whole mall (None: never said)."""

    user_id: str
    shop: ScopeChoices | None = None
    platform: ScopeChoices | None = None


def buyer_choices(user_id: str, rows: list[dict[str, Any]]) -> BuyerChoices:
    """The buyer's preferences from the send log's rows (scope, categories_off, channels_off, changed_at)."""
    scopes = {
        ("platform" if row["scope"] == PLATFORM else "shop"): ScopeChoices.model_validate(row) for row in rows
    }
    return BuyerChoices(user_id=user_id, **scopes)
