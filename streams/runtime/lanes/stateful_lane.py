"""A lane whose stage keeps a ledger: the router and the senders."""

from __future__ import annotations

from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.lanes.lane import Lane
from streams.runtime.lanes.stage import PipelineStage
from streams.runtime.state.store import Store


class StatefulLane(Lane):
    """Its ledger's store is restored with the partitions it is assigned, closed with them."""

    stage: PipelineStage

    def stores(self) -> list[Store]:
        return [self.stage.ledger.store] if self.stage.ledger is not None else []

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]:
        return self.stage.unwritable(record, detail)
