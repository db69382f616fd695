"""Asking Aliyun (``QuerySendDetails``) for the SMS reports that did not come.

Aliyun pushes an SMS's report once, retried three times; a report lost on the way would leave its
delivery without a receipt for good. So every ``MALL_NOTIFY_SMS_REPORT_CHECK_SECONDS`` the worker
looks, among the SMS of the receipts partitions it owns, for those delivered more than
``MALL_NOTIFY_SMS_REPORT_WAIT_SECONDS`` ago and still without a report, and asks Aliyun what became
of each (the phone number is opened from its sealed form for that call only). An answer becomes a
receipt record like a pushed one, which the receipts lane pairs as usual. While the carrier has not
answered, or Aliyun fails, the SMS is asked about again later, each time waiting twice as long.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

from channels.aliyun_sms import AliyunCallFailed, AliyunSmsDetails
from channels.base import ChannelName
from streams.core.receipts import parse_receipts_record, receipt_record
from streams.core.recipients import unseal
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.publisher import Publisher
from streams.runtime.kafka.records import Write
from streams.runtime.lanes.receipts import ReceiptsStage

log = get_logger("sms_reports")
WRITE_WAIT_SECONDS = 10.0


class ReportFallback:
    def __init__(
        self,
        stage: ReceiptsStage,
        details: AliyunSmsDetails,
        publisher: Publisher,
        recipient_key: bytes,
        wait_seconds: float,
        check_seconds: float,
    ) -> None:
        self.stage = stage
        self.details = details
        self.publisher = publisher
        self.key = recipient_key
        self.wait_seconds = wait_seconds
        self.check_seconds = check_seconds
        self._next_try: dict[str, tuple[float, float]] = {}
        """key -> (when to ask again, how long to wait after that)"""

    async def run(self, stopping: asyncio.Event) -> None:
        self.publisher.start()
        try:
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.check_seconds)
                if not stopping.is_set():
                    await self.check()
        finally:
            await self.publisher.close(wait_seconds=5.0)

    async def check(self) -> int:
        """Ask about every SMS overdue now; how many reports were recovered."""
        now = time.time()
        recovered = 0
        for key, value in self.stage.waiting(ChannelName.ALIYUN_SMS, older_than=now - self.wait_seconds):
            due, backoff = self._next_try.get(key, (0.0, self.check_seconds))
            if due > now:
                continue
            if await self._recover(key, value):
                recovered += 1
                self._next_try[key] = (now + self.wait_seconds, self.wait_seconds)
            else:
                self._next_try[key] = (now + backoff, backoff * 2)
        if recovered:
            log.info("SMS reports recovered from QuerySendDetails", extra=fields(reports=recovered))
        return recovered

    async def _recover(self, key: str, value: bytes) -> bool:
        """Ask Aliyun about one SMS and keep its answer as a receipt; False when there is none yet."""
        record = parse_receipts_record(value)
        sent = record.sent
        if sent is None or record.sealed_address is None or sent.provider_message_id is None:
            return False
        try:
            phone = unseal(self.key, record.sealed_address)
            receipt = await self.details.report(phone, sent.at, sent.provider_message_id)
        except (AliyunCallFailed, ValueError) as exc:
            log.warning("SMS report not asked", extra=fields(key=key, detail=str(exc)[:200]))
            return False
        if receipt is None:
            return False
        write = Write(self.stage.topics.receipts, *receipt_record(receipt, datetime.now(UTC)))
        try:
            [error] = await asyncio.wait_for(self.publisher.write([write]), WRITE_WAIT_SECONDS)
        except TimeoutError:
            return False  # Kafka did not take it: asked again later
        if error is not None:
            return False
        metrics.RECEIPTS.labels(ChannelName.ALIYUN_SMS.value, "recovered").inc()
        return True
