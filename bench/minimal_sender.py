"""The second baseline of `make bench`: the least a Python sender can do per delivery, in one process.

Consume the WeChat OA send topic, POST each message to the provider with aiohttp (256 in flight,
one access token fetched once), produce the provider's answer, commit per batch. No ledger, no
retries, no transactions: what one interpreter can deliver per second on this machine, the limit
our senders are compared with.

    python bench/minimal_sender.py BOOTSTRAP SOURCE TARGET SANDBOX_URL RECIPIENT_KEY COUNT
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

import aiohttp
import orjson
from confluent_kafka import Consumer, Producer

from streams.core.recipients import is_sealed, unseal
from streams.devtools.local_stack import SANDBOX_SECRETS

IN_FLIGHT = 256


async def token(session: aiohttp.ClientSession, base: str, appid: str) -> str:
    secret = json.loads(SANDBOX_SECRETS)[appid]
    body = {"grant_type": "client_credential", "appid": appid, "secret": secret}
    async with session.post(f"{base}/cgi-bin/stable_token", json=body) as reply:
        return str((await reply.json())["access_token"])


def message(value: bytes, key: bytes) -> tuple[str, dict[str, Any]]:
    delivery = orjson.loads(value)["delivery"]
    recipient = delivery["recipient"]
    body = {
        "touser": unseal(key, recipient) if is_sealed(recipient) else recipient,
        "template_id": delivery["template_id"],
        "data": {name: {"value": text} for name, text in delivery["fields"].items()},
        "client_msg_id": delivery["delivery_id"],
    }
    return str(delivery["account"]), body


async def run(bootstrap: str, source: str, target: str, base: str, key: bytes, count: int) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-minimal-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([source])
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    tokens: dict[str, str] = {}
    limit = asyncio.Semaphore(IN_FLIGHT)
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(value: bytes) -> bytes:
            appid, body = message(value, key)
            if appid not in tokens:
                tokens[appid] = await token(session, base, appid)
            url = f"{base}/cgi-bin/message/template/send?access_token={tokens[appid]}"
            async with limit, session.post(url, data=orjson.dumps(body)) as reply:
                return await reply.read()

        sent = 0
        while sent < count:
            batch = [
                m for m in await asyncio.to_thread(consumer.consume, IN_FLIGHT, 0.5) if m.error() is None
            ]
            answers = await asyncio.gather(*(send(m.value() or b"") for m in batch))
            for answer in answers:
                producer.produce(target, value=answer)
            if batch:
                producer.flush(30)
                consumer.commit(asynchronous=False)
                sent += len(batch)
    consumer.close()


if __name__ == "__main__":
    bootstrap, source, target, base, key, count = sys.argv[1:7]
    asyncio.run(run(bootstrap, source, target, base, key.encode(), int(count)))
