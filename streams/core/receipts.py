"""Receipts: did a delivered message reach the person? Pure.

The ``notify.receipts`` topic carries two kinds of records, both keyed ``<channel>:<appid>:<msgid>``
(WeChat) or ``aliyun_sms:<BizId>`` so that a delivery's and its receipt's land on the same
partition, whichever comes first. A WeChat receipt pairs only with a message sent from the account
whose server URL it came to: one posted to another account's URL names a key no delivery has, and
is counted as unmatched when it expires.

- ``sent``: the delivered outcome of a delivery whose provider returned a message id (written by
  its sender, in the transaction of that outcome);
- ``receipt``: what the provider pushed about that message (written by the receipts endpoint once
  the push is verified), never the phone number or openid.

The receipts lane pairs them and writes a second outcome for the delivery, ``reached`` or
``not_reached`` with the provider's reason; the first, ``delivered``, stays as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from channels.base import ChannelName, PushedReceipt
from streams.core.outcomes import Outcome, Status


class ReceiptNote(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: ChannelName
    message_id: str
    reached: bool
    code: str
    reason: str
    at: datetime
    """when the provider says it happened"""
    received_at: datetime
    delivery_id: str | None = None


class ReceiptsRecord(BaseModel):
    """One record of the receipts topic: a delivery sent, or a receipt."""

    model_config = ConfigDict(frozen=True)

    sent: Outcome | None = None
    receipt: ReceiptNote | None = None
    sealed_address: str | None = None
    """sent SMS: the phone number, sealed (:func:`~streams.core.recipients.seal`), to ask Aliyun
    for the report if it never comes"""


def receipts_key(channel: ChannelName, account: str, message_id: str) -> bytes:
    """WeChat message ids are an account's own; Aliyun's BizIds are the platform's one account's."""
    if channel is ChannelName.ALIYUN_SMS:
        return f"{channel.value}:{message_id}".encode()
    return f"{channel.value}:{account}:{message_id}".encode()


def sent_record(
    outcome: Outcome, account: str, sealed_address: str | None = None
) -> tuple[bytes, bytes] | None:
    """The record announcing a delivered message (sent from ``account``) whose receipt may come;
    None without a message id."""
    if outcome.status is not Status.DELIVERED or not outcome.provider_message_id or outcome.channel is None:
        return None
    key = receipts_key(outcome.channel, account, outcome.provider_message_id)
    record = ReceiptsRecord(sent=outcome, sealed_address=sealed_address)
    return key, record.model_dump_json(exclude_none=True).encode()


def receipt_record(pushed: PushedReceipt, received_at: datetime) -> tuple[bytes, bytes]:
    note = ReceiptNote(
        channel=pushed.channel,
        message_id=pushed.message_id,
        reached=pushed.reached,
        code=pushed.code,
        reason=pushed.reason,
        at=datetime.fromtimestamp(pushed.at, UTC),
        received_at=received_at,
        delivery_id=pushed.delivery_id,
    )
    key = receipts_key(pushed.channel, pushed.account, pushed.message_id)
    return key, ReceiptsRecord(receipt=note).model_dump_json(exclude_none=True).encode()


def parse_receipts_record(value: bytes | None) -> ReceiptsRecord:
    """A record of the receipts topic; ValueError when it is neither kind."""
    record = ReceiptsRecord.model_validate_json(value or b"")
    if (record.sent is None) == (record.receipt is None):
        raise ValueError("a receipts record is either sent or receipt")
    return record


def receipt_outcome(sent: Outcome, receipt: ReceiptNote) -> Outcome:
    """The second outcome of a delivered message: reached, or not reached with the provider's reason."""
    return sent.model_copy(
        update={
            "status": Status.REACHED if receipt.reached else Status.NOT_REACHED,
            "reason": None if receipt.reached else f"{receipt.code}: {receipt.reason}",
            "provider_code": receipt.code,
            "at": receipt.at,
            "attempts": sent.attempts,
        }
    )
