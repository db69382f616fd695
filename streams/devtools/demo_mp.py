"""The Mini Program part of ``make demo``: before the samples go out, the demo buyer answers the
Mini Program's subscription panel twice (as the mall's backend reports it: ``mp_subscription.answered``)
accepting the shipping notice both times and the payment notice once; three parcels then ship,
so two shipping notices go out and the third is skipped as ``no_subscription`` without asking WeChat."""

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
ANSWER_WAIT_SECONDS = 60.0


def buyer_accepts(
    bootstrap: str, topics: Topics, shop: ShopRules, catalog: Catalog, console: Console
) -> None:
    """The buyer's two answers, published and recorded before anything is sent to them."""
    templates, _ = subscribe_templates(shop, catalog, ["buyer_order_paid", "buyer_order_shipped"])
    paid, shipped = templates["buyer_order_paid"], templates["buyer_order_shipped"]
    now = datetime.now(UTC)
    answers = [{paid: "accept", shipped: "accept"}, {shipped: "accept"}]
    ids, values = zip(
        *(
            answered_event(shop.shop_id, answers_of(DEMO_MP_BUYER, results, now), "/mall/demo", now)
            for results in answers
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
        "panel twice: the shipping notice accepted twice, the payment notice once"
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
