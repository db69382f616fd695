"""The Mini Program part of ``make demo``: before the samples go out, the demo buyer answers the
Mini Program's subscription panel twice (as the mall's backend reports it: ``mp_subscription.answered``)
accepting the shipping notice both times and the payment notice once; three parcels then ship,
so two shipping notices go out and the third is skipped as ``no_subscription`` without asking WeChat.

The buyer who unfollowed the shop's Official Account accepts the order notice on the Mini
Program once: the demo shop's order notice goes to the first channel that reaches the buyer
(``fallback`` in its settings), so that buyer's new order reaches them on the Mini Program."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from channels.base import ChannelName
from streams.core.catalog import Catalog
from streams.core.mp_subscriptions import NO_SUBSCRIPTION, answered_event, answers_of, subscribe_templates
from streams.core.outcomes import Outcome, Status
from streams.core.recipients import mask_address
from streams.core.shops import ShopRules
from streams.core.topics import Topics
from streams.devtools.upstream import publish_values
from streams.ops.reading import end_offsets, read_until

DEMO_MP_BUYER = "oMp1a2b3c4d5e6f7g8h9i0jKlMnO"
"""the sample events' buyer on the demo shop's Mini Program"""
DEMO_UNFOLLOWED_MP_BUYER = "oMp40555unfollowedOA00000wXy"
"""the sample events' buyer who unfollowed the Official Account, on the Mini Program"""
ANSWER_WAIT_SECONDS = 60.0


def buyer_accepts(
    bootstrap: str, topics: Topics, shop: ShopRules, catalog: Catalog, console: Console
) -> None:
    """The buyer's two answers, published and recorded before anything is sent to them."""
    scenes = ["buyer_order_paid", "buyer_order_shipped", "buyer_order_submitted"]
    templates, _ = subscribe_templates(shop, catalog, scenes)
    paid, shipped, submitted = (templates[scene] for scene in scenes)
    now = datetime.now(UTC)
    answers = [
        (DEMO_MP_BUYER, {paid: "accept", shipped: "accept"}),
        (DEMO_MP_BUYER, {shipped: "accept"}),
        (DEMO_UNFOLLOWED_MP_BUYER, {submitted: "accept"}),
    ]
    ids, values = zip(
        *(
            answered_event(shop.shop_id, answers_of(openid, results, now), "/mall/demo", now)
            for openid, results in answers
        ),
        strict=True,
    )
    start = end_offsets(bootstrap, topics.outcomes)
    publish_values(bootstrap, topics, list(values))
    wanted = {event_id.encode() for event_id in ids}
    read_until(
        bootstrap,
        topics.outcomes,
        start,
        lambda records: wanted <= {record.key for record in records},
        ANSWER_WAIT_SECONDS,
    )
    console.print(
        f"[bold]Mini Program[/] buyer {mask_address('openid', DEMO_MP_BUYER)} answered the subscription "
        "panel twice: the shipping notice accepted twice, the payment notice once; "
        f"buyer {mask_address('openid', DEMO_UNFOLLOWED_MP_BUYER)} (who unfollowed the OA) the order notice"
    )


def print_fallbacks(console: Console, grouped: dict[str, list[Outcome]]) -> None:
    """The notices that reached their buyer on another channel than the first (channel fallback)."""
    for outcomes in grouped.values():
        for o in outcomes:
            if o.fallback_from is None:
                continue
            first = next((f for f in outcomes if f.channel is o.fallback_from and f.scene == o.scene), None)
            why = f" ({first.reason})" if first is not None and first.reason else ""
            console.print(
                f"[bold]Fallback[/] {o.scene}: {o.fallback_from.value} could not reach the buyer{why}: "
                f"{o.status.value} on {o.channel.value if o.channel else '?'}",
                highlight=False,
            )


def print_mp_spending(console: Console, grouped: dict[str, list[Outcome]]) -> None:
    """What the buyer's acceptances allowed: the shipping notices sent, and those not asked for."""
    shipped = [
        o
        for outcomes in grouped.values()
        for o in outcomes
        if o.channel is ChannelName.WECHAT_MP and o.scene == "buyer_order_shipped"
    ]
    sent = sum(o.status is Status.DELIVERED for o in shipped)
    spared = sum(o.status is Status.SKIPPED and o.reason == NO_SUBSCRIPTION for o in shipped)
    console.print(
        f"[bold]Mini Program[/] shipping notices: {sent} sent on the buyer's 2 acceptances, "
        f"{spared} skipped as {NO_SUBSCRIPTION} without asking WeChat"
    )
