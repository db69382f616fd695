"""A shop's SMS balance falling low: the seller is told, once per crossing. Pure.

The SMS sender that charges the message which takes a shop's balance below its threshold
(``sms_low_balance`` in the shop's settings, 100 segments by default) publishes the event
``sms_balance.low``; the router routes it like any event, to the scene ``seller_sms_balance_low``
(an OA notice to ``seller_openid``). The event's id names the crossing: the shop and the segments
it had bought then. So however many SMS, workers or restarts see the balance low, the seller is
told once (a copy of the event is a duplicate downstream); after the shop buys more, the next fall
below the threshold is a new crossing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime

from streams.core.events import envelope
from streams.core.shops import LOW_BALANCE_DEFAULT, ShopRules
from streams.core.sms_quota import AccountBook, Balance

LOW_BALANCE_TYPE = "sms_balance.low"
BANDS = ("exhausted", "low", "ok")
"""how the shops' balances are counted: used up (0 or below), below the threshold, above"""


def crossing_id(shop_id: int, balance: Balance) -> str:
    return f"sms-balance-low-{shop_id}-{balance.purchased}"


def band(shop: ShopRules | None, balance: Balance) -> str:
    if balance.available <= 0:
        return "exhausted"
    threshold = shop.sms_low_balance if shop is not None else LOW_BALANCE_DEFAULT
    return "low" if balance.available < threshold else "ok"


def shop_bands(book: AccountBook, shops: Callable[[int], ShopRules | None]) -> Counter[str]:
    """How many shops are in each band now (every band named, zero or not)."""
    counts = Counter(dict.fromkeys(BANDS, 0))
    counts.update(band(shops(shop_id), book.balance(shop_id)) for shop_id in book.shop_ids())
    return counts


def low_balance_event(shop: ShopRules, balance: Balance, now: datetime) -> tuple[str, bytes] | None:
    """The event telling the seller the balance is below the shop's threshold (its id, its value),
    or None when it is not, or the shop asked never to be told (threshold 0)."""
    if shop.sms_low_balance == 0 or balance.available >= shop.sms_low_balance:
        return None
    event_id = crossing_id(shop.shop_id, balance)
    seller = {"user_id": f"shop-{shop.shop_id}-owner"} | (
        {"oa_openid": shop.seller_openid} if shop.seller_openid else {}
    )
    data = {
        "seller": seller,
        "available": max(balance.available, 0),
        "threshold": shop.sms_low_balance,
        "purchased": balance.purchased,
        "fell_at": now,
    }
    return event_id, envelope(event_id, LOW_BALANCE_TYPE, "/mall-notify/sms", shop.shop_id, data, now)
