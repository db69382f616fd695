"""SMS packages and each shop's balance (短信购买). Pure.

A shop buys packages the platform defines (name, messages, price); each SMS then costs what
Aliyun bills: its segments. The billed text is the signature in 【】 plus the rendered template,
counted in characters (Chinese, letters, digits and punctuation, full or half width, one each;
a character outside the Basic Multilingual Plane, such as most emoji, is two, as in the UCS-2
encoding carriers use): up to 70 is one segment, a longer message is split into segments of 67.

The balance lives in the compacted topic ``notify.sms.account`` as two kinds of records:

- ``purchase/<shop>/<id>``: one purchase order (time, package, messages, price, who, when it
  expires unpaid); its messages count only once it is paid;
- ``paid/<shop>/<id>``: the payment of that order (when, how much, who confirmed it, why), under
  the order's id, so a payment applied twice credits once;
- ``charged/<shop>/<topic>/<partition>``: what the deliveries of one send-topic partition have
  cost the shop so far (cumulative segments and messages, and a version that grows with each write).
  Only the owner of that partition writes it, in the same transaction as the outcomes it counts.

So a balance is paid purchases minus charges; every writer's records are idempotent (a purchase
and its payment by the order's id, a charge by its version), and :class:`AccountBook` takes them
in any order, any number of times.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from streams.core.catalog import Frozen
from streams.core.errors import ConfigError
from streams.core.validation import UnreadableFile, problems, read_yaml

SINGLE_SEGMENT = 70
"""characters an SMS holds when it is one segment"""
LONG_SEGMENT = 67
"""characters per segment of a longer SMS (the rest carries the concatenation header)"""
QUOTA_EXHAUSTED = "sms_quota_exhausted"


def characters(text: str) -> int:
    """Characters as Aliyun bills them: one each, two outside the Basic Multilingual Plane."""
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    """The segments Aliyun bills for one SMS of ``text`` (signature included)."""
    length = characters(text)
    return 1 if length <= SINGLE_SEGMENT else math.ceil(length / LONG_SEGMENT)


def billed_text(signature: str, content: str) -> str:
    """What the phone shows and Aliyun bills: 【signature】 and the rendered content."""
    return f"【{signature}】{content}"


class Package(Frozen):
    """An SMS package the platform sells."""

    id: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=32)
    messages: int = Field(gt=0, le=10_000_000, description="segments the package adds to the balance")
    price_fen: int = Field(ge=0, le=100_000_000, description="price in fen (1/100 yuan)")
    retired: bool = Field(default=False, description="sold no more (purchases of it stand)")
    changed_at: datetime | None = None
    changed_by: str | None = Field(default=None, max_length=64)


class PackagesFile(Frozen):
    packages: list[Package] = Field(min_length=1)


def load_packages(path: Path) -> dict[str, Package]:
    """The platform's packages by id; ConfigError names the file and field."""
    try:
        document = PackagesFile.model_validate(read_yaml(path))
    except UnreadableFile as exc:
        raise ConfigError(str(path), [str(exc)]) from None
    except ValidationError as exc:
        raise ConfigError(str(path), problems(exc)) from None
    packages = {package.id: package for package in document.packages}
    if len(packages) != len(document.packages):
        raise ConfigError(str(path), ["packages: two packages share an id"])
    return packages


ORDER_HOURS = 24
"""how long a purchase order waits for its payment"""
TRIAL = "trial"
"""the package a shop may buy once"""
PurchaseStatus = Literal["pending", "paid", "expired"]


class Purchase(Frozen):
    """A purchase order of a package (短信购买): pending until it is paid, its messages credited
    only then; expired when its payment did not come in time."""

    purchase_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    shop_id: int = Field(gt=0, lt=10**18)
    package: str
    messages: int = Field(gt=0)
    price_fen: int = Field(ge=0)
    at: datetime
    who: str = Field(max_length=64, description="the token's owner: platform, or the shop")
    expires_at: datetime | None = Field(
        default=None,
        description="unpaid after this, the order is expired; none: paid when it was recorded "
        "(seeded by the platform, or recorded before orders were paid for)",
    )


class Payment(Frozen):
    """The payment of a purchase order: confirmed by the platform (an offline payment, with the
    reason). Recorded under the order's key, so a payment applied twice credits once."""

    purchase_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    shop_id: int = Field(gt=0, lt=10**18)
    amount_fen: int = Field(ge=0)
    at: datetime
    who: str = Field(max_length=64, description="who confirmed it")
    reason: str = Field(min_length=1, max_length=200, description="why: the transfer's reference, say")


@dataclass(frozen=True)
class PaymentRefused:
    """Why an order cannot be paid (:meth:`AccountBook.pay`)."""

    reason: Literal["unknown_purchase", "payment_mismatch", "purchase_expired"]
    detail: str


class Order(Purchase):
    """A purchase order as a shop and the platform see it: its status and its payment."""

    status: PurchaseStatus
    payment: Payment | None = None


def new_purchase(
    shop_id: int, package: Package, who: str, at: datetime, *, prepaid: bool = False
) -> Purchase:
    """A shop's purchase order of a package, with an id of its own (never merged with another),
    pending for :data:`ORDER_HOURS` unless ``prepaid`` (the platform seeding a development setup)."""
    return Purchase(
        purchase_id=uuid.uuid4().hex,
        shop_id=shop_id,
        package=package.id,
        messages=package.messages,
        price_fen=package.price_fen,
        at=at,
        who=who,
        expires_at=None if prepaid else at + timedelta(hours=ORDER_HOURS),
    )


class Charged(Frozen):
    """What one send-topic partition's deliveries have cost a shop so far."""

    shop_id: int
    segments: int = Field(ge=0)
    messages: int = Field(ge=0, description="SMS sent")
    refused: int = Field(default=0, ge=0, description="SMS not sent for lack of balance")
    version: int = Field(ge=0, description="how many times the owner of the partition wrote it")
    pending: list[str] = Field(
        default_factory=list,
        description="deliveries charged before Aliyun was asked whose outcome is not written yet: after "
        "a crash they are in doubt (Aliyun may have sent them) and are not charged again",
    )


_PURCHASE: TypeAdapter[Purchase] = TypeAdapter(Purchase)
_PAYMENT: TypeAdapter[Payment] = TypeAdapter(Payment)
_CHARGED: TypeAdapter[Charged] = TypeAdapter(Charged)


def purchase_record(purchase: Purchase) -> tuple[bytes, bytes]:
    key = f"purchase/{purchase.shop_id}/{purchase.purchase_id}"
    return key.encode(), purchase.model_dump_json().encode()


def payment_record(payment: Payment) -> tuple[bytes, bytes]:
    key = f"paid/{payment.shop_id}/{payment.purchase_id}"
    return key.encode(), payment.model_dump_json().encode()


def charged_key(shop_id: int, topic: str, partition: int) -> bytes:
    return f"charged/{shop_id}/{topic}/{partition}".encode()


class Balance(Frozen):
    shop_id: int
    purchased: int
    used: int = Field(description="segments of the SMS sent")
    sent: int = Field(description="SMS sent")
    refused: int = Field(description="SMS not sent for lack of balance")
    available: int = Field(
        description="segments the shop can still send: purchased - used (below zero: an overdraft)"
    )


class AccountBook:
    """Every shop's purchases and charges, merged from the account topic's records (in any order,
    each any number of times)."""

    def __init__(self) -> None:
        self._purchases: dict[int, dict[str, Purchase]] = {}
        self._payments: dict[int, dict[str, Payment]] = {}
        self._charged: dict[int, dict[tuple[str, int], Charged]] = {}
        self._committed: dict[tuple[str, int], dict[int, Charged]] = {}
        """per send-topic partition and shop, the charges as last read from the topic"""

    def __len__(self) -> int:
        return len(self._purchases.keys() | self._charged.keys() | self._payments.keys())

    def apply(self, key: bytes | None, value: bytes | None) -> int | str:
        """Take one record of the account topic: the shop it is about, or why it was ignored."""
        parts = (key or b"").decode(errors="replace").split("/")
        try:
            if parts[0] == "purchase" and len(parts) == 3:
                purchase = _PURCHASE.validate_json(value or b"")
                self._purchases.setdefault(purchase.shop_id, {})[purchase.purchase_id] = purchase
                return purchase.shop_id
            if parts[0] == "paid" and len(parts) == 3:
                payment = _PAYMENT.validate_json(value or b"")
                self._payments.setdefault(payment.shop_id, {})[payment.purchase_id] = payment
                return payment.shop_id
            if parts[0] == "charged" and len(parts) == 4:
                charged = _CHARGED.validate_json(value or b"")
                self._committed.setdefault((parts[2], int(parts[3])), {})[charged.shop_id] = charged
                return self.merge(parts[2], int(parts[3]), charged)
        except (ValidationError, ValueError) as exc:
            return f"an unreadable account record {key!r}: {str(exc)[:200]}"
        return f"an account record with an unknown key {key!r}"

    def merge(self, topic: str, partition: int, charged: Charged) -> int:
        """Take a partition's charges unless a later version is known (:meth:`committed_only` takes
        what was committed as the truth, when the partition is assigned to this process)."""
        charges = self._charged.setdefault(charged.shop_id, {})
        known = charges.get((topic, partition))
        if known is None or charged.version >= known.version:
            charges[(topic, partition)] = charged
        return charged.shop_id

    def committed_only(self, topic: str, partition: int) -> None:
        """Forget what this process counted for a partition and did not see committed (it was
        just assigned: what an earlier owner here wrote and lost may never have been committed)."""
        committed = self._committed.get((topic, partition), {})
        for shop_id, charges in self._charged.items():
            if shop_id in committed:
                charges[(topic, partition)] = committed[shop_id]
            else:
                charges.pop((topic, partition), None)

    def charged(self, shop_id: int, topic: str, partition: int) -> Charged:
        known = self._charged.get(shop_id, {}).get((topic, partition))
        return known or Charged(shop_id=shop_id, segments=0, messages=0, version=0)

    def paid(self, purchase: Purchase) -> bool:
        return purchase.expires_at is None or purchase.purchase_id in self._payments.get(purchase.shop_id, {})

    def status(self, purchase: Purchase, now: datetime) -> PurchaseStatus:
        if self.paid(purchase):
            return "paid"
        assert purchase.expires_at is not None
        return "expired" if now >= purchase.expires_at else "pending"

    def payment(self, purchase: Purchase) -> Payment | None:
        return self._payments.get(purchase.shop_id, {}).get(purchase.purchase_id)

    def purchase(self, shop_id: int, purchase_id: str) -> Purchase | None:
        return self._purchases.get(shop_id, {}).get(purchase_id)

    def pay(
        self,
        shop_id: int,
        purchase_id: str,
        who: str,
        reason: str,
        at: datetime,
        amount_fen: int | None = None,
    ) -> Payment | PaymentRefused:
        """The record that pays an order at ``at``: the one already recorded when it was paid
        before (a second payment credits nothing more), or a new one for its price; or why it
        cannot be paid: no such order, another amount (when the payer says how much), expired."""
        purchase = self.purchase(shop_id, purchase_id)
        if purchase is None:
            return PaymentRefused("unknown_purchase", f"shop {shop_id} has no purchase {purchase_id[:64]!r}")
        if amount_fen is not None and amount_fen != purchase.price_fen:
            detail = f"{amount_fen} fen paid for an order of {purchase.price_fen}"
            return PaymentRefused("payment_mismatch", detail)
        if self.status(purchase, at) == "expired":
            expired = f"{purchase.expires_at:%Y-%m-%d %H:%M} UTC"
            return PaymentRefused(
                "purchase_expired", f"purchase {purchase_id} expired unpaid at {expired}; buy again"
            )
        return self.payment(purchase) or Payment(
            purchase_id=purchase_id,
            shop_id=shop_id,
            amount_fen=purchase.price_fen,
            at=at,
            who=who[:64],
            reason=reason,
        )

    def purchase_refusal(self, shop_id: int, package: str, now: datetime) -> str | None:
        """Why the shop may not buy ``package`` now: the trial package once per shop."""
        if package != TRIAL:
            return None
        earlier = [p for p in self._purchases.get(shop_id, {}).values() if p.package == TRIAL]
        if any(self.status(p, now) != "expired" for p in earlier):
            return f"shop {shop_id} already bought the {TRIAL} package, which a shop buys once"
        return None

    def balance(self, shop_id: int) -> Balance:
        charges = self._charged.get(shop_id, {}).values()
        purchased = sum(p.messages for p in self._purchases.get(shop_id, {}).values() if self.paid(p))
        used = sum(c.segments for c in charges)
        return Balance(
            shop_id=shop_id,
            purchased=purchased,
            used=used,
            sent=sum(c.messages for c in charges),
            refused=sum(c.refused for c in charges),
            available=purchased - used,
        )

    def shop_ids(self) -> set[int]:
        """Every shop with a purchase or a charge."""
        return set(self._purchases) | set(self._charged)

    def purchases(self, shop_id: int) -> list[Purchase]:
        return sorted(self._purchases.get(shop_id, {}).values(), key=lambda p: p.at)

    def orders(self, shop_id: int, now: datetime) -> list[Order]:
        """The shop's purchase orders, oldest first, each with its status and payment."""
        return [self.order(purchase, now) for purchase in self.purchases(shop_id)]

    def order(self, purchase: Purchase, now: datetime) -> Order:
        return Order(
            **purchase.model_dump(), status=self.status(purchase, now), payment=self.payment(purchase)
        )


def charged_value(charged: Charged) -> bytes:
    document: dict[str, Any] = charged.model_dump()
    return orjson.dumps(document)
