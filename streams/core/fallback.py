"""Channel fallback: a buyer's notice reaches them once, on the first of the shop's channels that
can (policy ``first_reachable``). Pure.

The buyers lane sends the notice's first send and keeps a :class:`Chain` (what is in flight, what
is left) in its state; the dispatch names the buyer and the notice (``answer_to``), so its sender,
when it ends the delivery, also writes an :class:`Answer` to the buyers' topic under the buyer's
key. An answer that the channel cannot reach the person (not following, no subscription, blocked)
sends the next one, its outcome naming ``fallback_from``; any other end (delivered, dead-lettered,
skipped for another reason) ends the chain, and the sends never tried end ``skipped`` with why.
The chain and the next dispatch are written in one transaction with the answer's offset, so a
crash in between sends the next channel once, and an answer read again (or late, for a channel
no longer in flight) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import TypeAdapter

from channels.base import ChannelName
from streams.core.buyer_choices import Send

ENDED_KIND = b"ended"
"""the kind of record a sender writes to the buyers' topic when a delivery of a chain ends
(header ``mall-notify-kind``)"""
NOT_NEEDED = "not_needed"
NOT_TRIED = "not_tried"
FALLBACK = "fallback"
FALLBACK_UNUSED = "fallback_unused"
"""the buyers lane's decisions: the next channel sent, a channel left untried when the chain ended"""


@dataclass(frozen=True, slots=True)
class Answer:
    """How a delivery of a chain ended, as its sender tells the buyers lane."""

    notice_id: str
    channel: ChannelName
    status: str
    """delivered, skipped or dead_lettered"""
    unreachable: bool
    """the channel cannot reach the person: try the next one"""

    def to_json(self) -> bytes:
        return orjson.dumps(self)


@dataclass(frozen=True, slots=True)
class Chain:
    """A notice's channels still to go, while one is in flight."""

    current: ChannelName
    rest: list[Send]

    def to_json(self) -> bytes:
        return orjson.dumps(self)


@dataclass(frozen=True, slots=True)
class Next:
    """Send ``send`` (it falls back from ``after``); the chain is ``chain`` now (None: it ends with it)."""

    send: Send
    after: ChannelName
    chain: Chain | None


@dataclass(frozen=True, slots=True)
class Ended:
    """The chain ends: ``untried`` end skipped with ``reason`` (none left: nothing to say)."""

    untried: list[Send]
    reason: str


_ANSWER: TypeAdapter[Answer] = TypeAdapter(Answer)
_CHAIN: TypeAdapter[Chain] = TypeAdapter(Chain)


def parse_answer(raw: bytes | None) -> Answer:
    """raises pydantic's ValidationError"""
    return _ANSWER.validate_json(raw or b"", strict=True)


def parse_chain(raw: bytes) -> Chain:
    return _CHAIN.validate_json(raw, strict=True)


def start(sends: list[Send]) -> tuple[Send, Chain | None]:
    """The first send of a notice, and its chain (None: nothing to fall back to)."""
    first, *rest = sends
    return first, (Chain(first.channel, rest) if rest else None)


def after(chain: Chain | None, answer: Answer) -> Next | Ended | None:
    """What an answer does to a notice's chain; None: nothing (no chain, or not the channel in
    flight: an answer read again, or a chain that ended already)."""
    if chain is None or chain.current != answer.channel:
        return None
    if not answer.unreachable:
        reason = (
            f"{NOT_NEEDED}: the buyer was reached on {answer.channel.value}"
            if answer.status == "delivered"
            else f"{NOT_TRIED}: {answer.channel.value} ended {answer.status} (not unreachable)"
        )
        return Ended(chain.rest, reason)
    following, *rest = chain.rest
    return Next(following, answer.channel, Chain(following.channel, rest) if rest else None)
