"""A lane whose stage keeps a ledger: the router and the senders."""

from __future__ import annotations

from streams.runtime.lane import Lane, Partition
from streams.runtime.records import ConsumedRecord, Write
from streams.runtime.restore import restore
from streams.runtime.stage import PipelineStage


class StatefulLane(Lane):
    """Restores the ledger of the partitions it is assigned, drops it with them."""

    stage: PipelineStage

    async def assigned(self, partitions: list[Partition]) -> None:
        await restore(self.name, self.stage.ledger, self.config.bootstrap_servers, partitions)

    def released(self, partitions: list[Partition]) -> None:
        self.stage.ledger.drop(partitions)

    def state_size(self) -> int:
        return len(self.stage.ledger)

    def unwritable(self, record: ConsumedRecord, detail: str) -> list[Write]:
        return self.stage.unwritable(record, detail)
