"""What a verification code must pass before the codes' sender calls Aliyun: its validity, and its
phone's limits (:mod:`streams.core.codes`), with each phone's recent sends kept in the codes lane's
store. The router keys every code by its recipient, so all codes of a phone are on one partition
of the codes topic, and its owner alone holds (and restores) that phone's sends.

Admitting a code counts it at once (two codes in flight cannot both take the last slot); a code
that Aliyun surely did not send (it refused it, or answered an error) is taken back, so an outage
never uses up a phone's codes.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import datetime

from streams.core.codes import CodeRules, expired, phone_limit, recent
from streams.runtime.kafka.records import Write
from streams.runtime.state.store import Partition, Store

SENDS = 9
"""the tag of a phone's entry in the codes lane's store"""
SEND = struct.Struct(">d8s")
"""one code counted against a phone: when, and a digest of its delivery id"""
Sends = list[tuple[float, bytes]]


def phone_key(phone: str) -> bytes:
    return b"phone:" + hashlib.blake2b(phone.encode(), digest_size=16).digest()


def _digest(delivery_id: str) -> bytes:
    return hashlib.blake2b(delivery_id.encode(), digest_size=8).digest()


class CodeLimits:
    def __init__(self, store: Store, rules: CodeRules) -> None:
        self.store = store
        self.rules = rules

    def admit(
        self, source: Partition, phone: str, delivery_id: str, event_time: datetime | None, now: datetime
    ) -> tuple[str | None, list[Write]]:
        """Why the code is not sent (``expired``, ``phone_limit: ...``), or None and the write that
        counts it against its phone. A code already counted (read again after a crash, in doubt
        whether it went out) is not counted twice, nor refused for its own count."""
        if expired(event_time, now, self.rules):
            return "expired", []
        at, digest = now.timestamp(), _digest(delivery_id)
        sends = self._sends(source, phone, at)
        if any(counted == digest for _, counted in sends):
            return None, []
        refused = phone_limit([when for when, _ in sends], at, self.rules)
        if refused is not None:
            return refused, []
        return None, [self._keep(source, phone, [*sends, (at, digest)])]

    def take_back(self, source: Partition, phone: str, delivery_id: str) -> list[Write]:
        """The write that uncounts a code that was not sent after all."""
        sends = self._sends(source, phone, self.store.clock())
        kept = [send for send in sends if send[1] != _digest(delivery_id)]
        return [self._keep(source, phone, kept)] if len(kept) < len(sends) else []

    def _sends(self, source: Partition, phone: str, now: float) -> Sends:
        entry = self.store.partition(source).get(phone_key(phone))
        if entry is None:
            return []
        sends = list(SEND.iter_unpack(entry.payload[: len(entry.payload) // SEND.size * SEND.size]))
        still = set(recent([when for when, _ in sends], now, self.rules))
        return [(when, digest) for when, digest in sends if when in still]

    def _keep(self, source: Partition, phone: str, sends: Sends) -> Write:
        payload = b"".join(SEND.pack(when, digest) for when, digest in sends)
        at = max((when for when, _ in sends), default=self.store.clock())
        return self.store.partition(source).put(phone_key(phone), payload, at, SENDS)
