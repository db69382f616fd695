"""The Mini Program sender's record of what each buyer accepted (:mod:`streams.core.mp_subscriptions`),
in a store of its own, on disk, with a compacted changelog partitioned like the send topic.

The router keys a buyer's Mini Program deliveries and their answers to the subscription panel by
the buyer, so both arrive on one partition of the send topic, in order; its owner alone holds that
buyer's allowances. An answer adds to them; a message sent uses one; a 43101 from WeChat (it knows
of none left) sets them to nothing. Every change is written in the transaction of the record that
caused it, so a crash neither loses an acceptance nor spends one twice.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from streams.core.mp_subscriptions import NOTHING, Allowance, Answers
from streams.runtime.kafka.records import Write
from streams.runtime.state.store import Partition, Store

ALLOWANCE = 0
"""the tag of an allowance entry"""


def _key(buyer: bytes, template_id: str) -> bytes:
    return b"mp:" + buyer + b"|" + template_id.encode()


class Subscriptions:
    def __init__(self, store: Store) -> None:
        self.store = store

    def allowance(self, source: Partition, buyer: bytes, template_id: str) -> Allowance:
        entry = self.store.partition(source).get(_key(buyer, template_id))
        return Allowance.unpack(entry.payload) if entry is not None else NOTHING

    def answered(self, source: Partition, buyer: bytes, answers: Answers) -> list[Write]:
        """The writes that keep a buyer's answers."""
        writes = []
        for template_id, answer in answers.results.items():
            step = partial(Allowance.answered, answer=answer, long_term=answers.long_term)
            writes += self._change(source, buyer, template_id, step)
        return writes

    def used(self, source: Partition, buyer: bytes, template_id: str) -> list[Write]:
        """The write that spends one acceptance on a message sent (none for a long-term one)."""
        return self._change(source, buyer, template_id, Allowance.used)

    def none_left(self, source: Partition, buyer: bytes, template_id: str) -> list[Write]:
        """WeChat answered 43101: the buyer has no acceptance left, whatever was counted."""
        return self._change(source, buyer, template_id, lambda _: NOTHING)

    def _change(
        self, source: Partition, buyer: bytes, template_id: str, step: Callable[[Allowance], Allowance]
    ) -> list[Write]:
        """The write that keeps what ``step`` makes of the allowance, when it changes it."""
        before = self.allowance(source, buyer, template_id)
        after = step(before)
        return [self._keep(source, buyer, template_id, after)] if after != before else []

    def _keep(self, source: Partition, buyer: bytes, template_id: str, allowance: Allowance) -> Write:
        state = self.store.partition(source)
        key = _key(buyer, template_id)
        if allowance == NOTHING:
            return state.delete(key)
        return state.put(key, allowance.pack(), self.store.clock(), ALLOWANCE)
