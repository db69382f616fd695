"""A lane whose stage keeps a ledger: the router and the senders; and one that takes batches once
a table it needs is loaded: the router (the shops' settings), the webhook lane (the endpoints)."""

from __future__ import annotations

import asyncio

from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.lanes.lane import Lane, LaneConfig
from streams.runtime.lanes.stage import PipelineStage
from streams.runtime.state.store import Store


class StatefulLane(Lane):
    """Its ledger's store is restored with the partitions it is assigned, closed with them."""

    stage: PipelineStage

    def stores(self) -> list[Store]:
        return [self.stage.ledger.store] if self.stage.ledger is not None else []

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]:
        return self.stage.unwritable(record, detail)


class LoadedFirstLane(StatefulLane):
    """Takes up to ``batch`` records at a time, none before ``ready`` is set (its table loaded)."""

    def __init__(
        self, name: str, config: LaneConfig, transactions: Transactions, *, batch: int, ready: asyncio.Event
    ) -> None:
        super().__init__(name, config, transactions)
        self.batch = batch
        self._ready = ready

    async def room(self, stopping: asyncio.Event) -> int:
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), timeout=self.config.wait_seconds)
            except TimeoutError:
                return 0
        await self.transactions.room()
        return 0 if stopping.is_set() else self.batch
