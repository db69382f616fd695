"""The send log's part of `make bench`: a database of its own filled with SEND_LOG_ROWS rows
(10,000,000 by default: 30 days of a platform with 10,000 shops and 200,000 recipients), generated
straight in PostgreSQL, then a shop's send log page and a recipient's history asked 1,000 times
each through the admin API, one request at a time; the latency of each, as a merchant's page or a
support desk would see it.

    python bench/send_log_bench.py [ROWS]     prints one JSON line
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from streams.core.recipients import recipient_hash
from streams.core.topics import load_topics
from streams.devtools.local_stack import start_api
from streams.ops.topic_admin import ensure_topics
from streams.runtime.database import ensure_partitions, migrate
from streams.settings import PROJECT_ROOT, local_database_url

ROWS = int(os.environ.get("SEND_LOG_ROWS", "10000000"))
SHOPS = 10_000
RECIPIENTS = 200_000
DAYS = 30
QUERIES = 1_000
KEY = "bench-recipient-key-not-a-secret"
TOKEN = "bench-platform-token-0001"
DATABASE = "mall_notify_bench"
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")


def phone(n: int) -> str:
    return f"139{n:08d}"


def fresh_database(server: str) -> str:
    """The bench's own database on the server of ``server`` (dropped and created again)."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return server.rsplit("/", 1)[0] + "/" + DATABASE


def fill(url: str, rows: int) -> float:
    """``rows`` delivered messages over the last DAYS days; the seconds it took (indexes included)."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        migrate(conn)
        today = time.gmtime()
        first = time.mktime((today.tm_year, today.tm_mon, today.tm_mday, 0, 0, 0, 0, 0, 0)) - DAYS * 86400
        with conn.transaction():
            ensure_partitions(conn, [_date(first + day * 86400) for day in range(DAYS + 2)])
        conn.commit()
        conn.execute("CREATE TEMP TABLE people (n integer PRIMARY KEY, hash text, masked text)")
        with conn.cursor().copy("COPY people (n, hash, masked) FROM STDIN") as copy:
            for n in range(RECIPIENTS):
                copy.write_row(
                    (n, recipient_hash(KEY.encode(), "phone", phone(n)), f"139****{n % 10000:04d}")
                )
        conn.execute(
            """
            INSERT INTO messages (day, id, shop_id, event_id, delivery_id, scene, channel, status,
                                  recipient_hash, recipient_masked, attempts, routed_at, finished_at,
                                  reached, reached_at, sms_segments)
            SELECT (at AT TIME ZONE 'UTC')::date, 'd-' || i, 1 + (i * 7919) %% %(shops)s, 'evt-' || i,
                   'd-' || i, 'buyer_order_paid',
                   CASE WHEN i %% 3 = 0 THEN 'aliyun_sms' ELSE 'wechat_oa' END, 'delivered', p.hash,
                   p.masked, 1, at, at + interval '1 second', true, at + interval '5 seconds',
                   CASE WHEN i %% 3 = 0 THEN 1 END
            FROM (SELECT i, to_timestamp(%(first)s + (i::float8 / %(rows)s) * %(span)s) AS at
                  FROM generate_series(1::bigint, %(rows)s) AS i) AS g
            JOIN people p ON p.n = (g.i * 104729) %% %(people)s
            """,
            {"shops": SHOPS, "first": first, "rows": rows, "span": DAYS * 86400, "people": RECIPIENTS},
        )
        conn.commit()
        conn.execute("ANALYZE messages")
        conn.commit()
    return time.perf_counter() - started


def _date(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


def timed(url: str) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    spent = time.perf_counter() - started
    assert answer, f"an empty answer from {url}"
    return spent


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else ROWS
    server = os.environ.get("MALL_NOTIFY_DATABASE_URL") or local_database_url()
    assert server, "no PostgreSQL: deploy/postgres-local/postgres.sh up"
    url = fresh_database(server)
    filled = fill(url, rows)
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM messages").fetchone()
    assert stored is not None
    assert stored[0] == rows, f"{stored[0]} rows stored of {rows}"
    topics = load_topics(PROJECT_ROOT / "config" / "topics.yaml", f"bench{uuid.uuid4().hex[:6]}.")
    ensure_topics(BOOTSTRAP, topics.all())
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "MALL_NOTIFY_TOPIC_PREFIX": topics.prefix,
        "MALL_NOTIFY_DATABASE_URL": url,
        "MALL_NOTIFY_RECIPIENT_KEY": KEY,
        "MALL_NOTIFY_API_PLATFORM_TOKEN": TOKEN,
        "MALL_NOTIFY_LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory() as logs:
        api = start_api(Path(logs), env)
        try:
            pick = random.Random(7)
            pages = [
                timed(f"{api.url}/v1/messages?shop={pick.randint(1, SHOPS)}&limit=50") for _ in range(QUERIES)
            ]
            people = [
                timed(f"{api.url}/v1/history?phone={phone(pick.randrange(RECIPIENTS))}")
                for _ in range(QUERIES)
            ]
        finally:
            api.stop()
    print(
        json.dumps(
            {
                "rows": rows,
                "fill_seconds": filled,
                "page_p50": percentile(pages, 0.5),
                "page_p99": percentile(pages, 0.99),
                "history_p50": percentile(people, 0.5),
                "history_p99": percentile(people, 0.99),
                "queries": QUERIES,
            }
        )
    )


if __name__ == "__main__":
    main()
