"""PostgreSQL, the send log's store: the schema's migrations, the writes of the send-log lane (rows
and the offsets they came from, in one transaction), retention, and the queries of the send log.

Migrations are the numbered SQL files of ``migrations/``, applied in order under an advisory lock
(two processes starting at once apply each once), each in its own transaction, recorded in
``schema_migrations``. ``messages`` is partitioned by day: a day's partition is created by the
first write that needs it, and dropped whole when it is older than the retention.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from streams.core.errors import MallNotifyError
from streams.core.rendering import MALL_TIME_ZONE
from streams.core.send_log import MessageQuery, Row
from streams.settings import PROJECT_ROOT

MIGRATIONS = PROJECT_ROOT / "migrations"
MIGRATION_LOCK = 72_701_001
PARTITION_LOCK = 72_701_002
FINAL_COLUMNS = (
    "day", "id", "shop_id", "event_id", "delivery_id", "scene", "channel", "status", "reason",
    "provider_code", "recipient_hash", "recipient_masked", "attempts", "replayed", "routed_at",
    "finished_at", "sms_segments", "deferred_until",
)  # fmt: skip
RECEIPT_COLUMNS = (
    "day", "id", "shop_id", "event_id", "delivery_id", "scene", "channel", "status", "recipient_hash",
    "recipient_masked", "attempts", "routed_at", "reached", "reached_at", "receipt_code", "receipt_reason",
)  # fmt: skip
FINAL_UPDATE = (
    "status", "reason", "provider_code", "attempts", "replayed", "finished_at", "sms_segments",
    "deferred_until",
)  # fmt: skip
RECEIPT_UPDATE = ("reached", "reached_at", "receipt_code", "receipt_reason")
Statement = tuple[sql.SQL | sql.Composed, list[object]]
"""a read: its SQL and parameters"""


class DatabaseUnavailable(MallNotifyError):
    """PostgreSQL did not answer, or refused: the message says which and why."""


def connect(url: str, **options: Any) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, connect_timeout=10, **options)
    except psycopg.OperationalError as exc:
        raise unavailable(exc, url) from None


def unavailable(exc: psycopg.OperationalError, url: str) -> DatabaseUnavailable:
    """What a lost or refused connection says: where (no password) and psycopg's first line."""
    lines = str(exc).strip().splitlines()
    return DatabaseUnavailable(f"PostgreSQL at {_where(url)}: {lines[0] if lines else repr(exc)}")


def _where(url: str) -> str:
    """The URL without its password."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}" if rest else url


def migrations(directory: Path = MIGRATIONS) -> list[tuple[int, Path]]:
    return sorted((int(path.name.split("_", 1)[0]), path) for path in directory.glob("[0-9]*_*.sql"))


def migrate(conn: psycopg.Connection[Any], directory: Path = MIGRATIONS) -> list[int]:
    """Apply the migrations the database does not have yet; the versions applied."""
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, path in migrations(directory):
            if version in done:
                continue
            with conn.transaction():
                conn.execute(sql.SQL(path.read_text()))
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", [version])
            applied.append(version)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])
        conn.autocommit = False


def behind(conn: psycopg.Connection[Any], directory: Path = MIGRATIONS) -> list[int]:
    """The migrations the database lacks."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    done = (
        {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        if exists and exists[0]
        else set()
    )
    conn.rollback()
    return [version for version, _ in migrations(directory) if version not in done]


def partition_name(day: date) -> str:
    return f"messages_{day:%Y%m%d}"


def ensure_partitions(conn: psycopg.Connection[Any], days: Iterable[date]) -> None:
    """The day partitions of ``messages`` the rows need (in the caller's transaction; its lock
    is held until the transaction ends, so ask only for days not known to exist)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
    for day in sorted(set(days)):
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF messages FOR VALUES FROM ({}) TO ({})"
            ).format(
                sql.Identifier(partition_name(day)), sql.Literal(day), sql.Literal(day + timedelta(days=1))
            )
        )


def drop_partitions_before(conn: psycopg.Connection[Any], first_kept: date) -> list[date]:
    """Drop the day partitions older than ``first_kept``; their days."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'messages'"
        )
    ]
    days = [datetime.strptime(name.removeprefix("messages_"), "%Y%m%d").date() for name in names]
    dropped = [day for day in days if day < first_kept]
    for day in dropped:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(partition_name(day))))
    conn.commit()
    return dropped


def retain(conn: psycopg.Connection[Any], keep_days: int, now: datetime) -> list[date]:
    """Drop the days routed more than ``keep_days`` days before ``now`` (UTC days); their days."""
    return drop_partitions_before(conn, (now.astimezone(UTC) - timedelta(days=keep_days)).date())


def write_rows(
    conn: psycopg.Connection[Any],
    consumer: str,
    rows: Sequence[Row],
    offsets: dict[tuple[str, int], int],
    days: set[date],
) -> None:
    """Upsert the rows and record where their topic partitions were read up to, in one transaction.
    ``days``: the days whose partitions this writer knows exist; a batch with another day creates
    its partition (under a lock that serializes writers until the commit) and adds it once committed."""
    new_days = {row.day for row in rows if row.kind != "choice"} - days
    with conn.transaction():
        if new_days:
            ensure_partitions(conn, new_days)
        for kind, columns, upsert in (
            ("final", FINAL_COLUMNS, FINAL_UPSERT),
            ("receipt", RECEIPT_COLUMNS, RECEIPT_UPSERT),
            ("choice", CHOICE_COLUMNS, CHOICE_UPSERT),
        ):
            values = [[row.values.get(column) for column in columns] for row in rows if row.kind == kind]
            if values:
                with conn.cursor() as cursor:
                    cursor.executemany(upsert, values)
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO consumed_offsets (consumer, topic, partition, next_offset) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (consumer, topic, partition) "
                "DO UPDATE SET next_offset = EXCLUDED.next_offset",
                [[consumer, topic, partition, offset] for (topic, partition), offset in offsets.items()],
            )
    days |= new_days


def _upsert(columns: tuple[str, ...], update: tuple[str, ...], kind: str) -> sql.Composed:
    """A final outcome replaces an earlier one (a replay's), but a skip never replaces a delivery (a
    copy of the event decided after the buyer opted out: they got the first); a receipt only fills
    its columns."""
    newer = sql.SQL(
        " WHERE (messages.finished_at IS NULL OR messages.finished_at <= EXCLUDED.finished_at)"
        " AND NOT (messages.status = 'delivered' AND EXCLUDED.status = 'skipped')"
    )
    return sql.SQL(
        "INSERT INTO messages ({columns}) VALUES ({values}) "
        "ON CONFLICT (day, id) DO UPDATE SET {update}{where}"
    ).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        update=sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(column)) for column in update
        ),
        where=newer if kind == "final" else sql.SQL(""),
    )


FINAL_UPSERT = _upsert(FINAL_COLUMNS, FINAL_UPDATE, "final")
RECEIPT_UPSERT = _upsert(RECEIPT_COLUMNS, RECEIPT_UPDATE, "receipt")


CHOICE_COLUMNS = ("user_id", "scope", "categories_off", "channels_off", "quiet_hours", "changed_at")
CHOICE_UPSERT = sql.SQL(
    "INSERT INTO buyer_preferences (user_id, scope, categories_off, channels_off, quiet_hours, changed_at) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, scope) DO UPDATE SET "
    "categories_off = EXCLUDED.categories_off, channels_off = EXCLUDED.channels_off, "
    "quiet_hours = EXCLUDED.quiet_hours, changed_at = EXCLUDED.changed_at "
    "WHERE buyer_preferences.changed_at <= EXCLUDED.changed_at"
)
"""a buyer's newer word in a scope replaces the older (one read late never does)"""


CHOICES = sql.SQL(
    "SELECT scope, categories_off, channels_off, quiet_hours, changed_at FROM buyer_preferences "
    "WHERE user_id = %s AND scope IN (%s, 'platform') ORDER BY scope"
)


def choices_statement(user_id: str, shop_id: int) -> Statement:
    """A buyer's preferences in a shop and in the whole mall (``platform``)."""
    return CHOICES, [user_id, str(shop_id)]


def read_offsets(conn: psycopg.Connection[Any], consumer: str, topic: str) -> dict[int, int]:
    rows = conn.execute(
        "SELECT partition, next_offset FROM consumed_offsets WHERE consumer = %s AND topic = %s",
        [consumer, topic],
    ).fetchall()
    conn.rollback()
    return {partition: offset for partition, offset in rows}


def messages_statement(query: MessageQuery) -> Statement:
    """The SQL of a page of the send log, newest first (one row more than the limit: whether there
    is a next), and its parameters; rows as :class:`streams.core.send_log.Message` reads them."""
    where: list[sql.Composable] = [sql.SQL("finished_at IS NOT NULL")]
    params: list[object] = []
    for column, value in (
        ("shop_id", query.shop_id),
        ("scene", query.scene),
        ("channel", query.channel.value if query.channel else None),
        ("status", query.status),
        ("reached", query.reached),
        ("recipient_hash", query.recipient_hash),
    ):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if query.since is not None:
        where.append(sql.SQL("finished_at >= %s"))  # not by day: a replay finishes days after routing
        params.append(query.since)
    if query.until is not None:
        where.append(sql.SQL("finished_at < %s"))
        params.append(query.until)
    if query.after is not None:
        where.append(sql.SQL("(finished_at, id) < (%s, %s)"))
        params += list(query.after)
    statement = sql.SQL(
        "SELECT id, shop_id, event_id, delivery_id, scene, channel, status, reason, provider_code, "
        "recipient_masked AS to, attempts, routed_at, finished_at, reached, reached_at, receipt_reason, "
        "sms_segments, deferred_until FROM messages WHERE {} ORDER BY finished_at DESC, id DESC LIMIT %s"
    ).format(sql.SQL(" AND ").join(where))
    return statement, [*params, query.limit + 1]


def fetch(conn: psycopg.Connection[Any], statement: Statement) -> list[dict[str, Any]]:
    """The rows of a read (a blocking connection: the commands, the demo); the transaction ends."""
    try:
        with conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(statement[0], statement[1]).fetchall()
        conn.rollback()
    except psycopg.OperationalError as exc:  # the server went away mid-way
        raise unavailable(exc, f"postgresql://{conn.info.host}:{conn.info.port}/{conn.info.dbname}") from None
    return rows


async def fetch_async(pool: AsyncConnectionPool, statement: Statement) -> list[dict[str, Any]]:
    """The rows of a read, from the admin API's pool of async connections."""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(statement[0], statement[1])
        return await cursor.fetchall()


def spend_statement(shop_id: int, since: datetime) -> Statement:
    """A shop's SMS delivered per day (the mall's time) since a moment, newest day first: the rows
    :class:`streams.core.send_log.DaySpend` reads."""
    return SPEND, [MALL_TIME_ZONE.key, shop_id, since]


SPEND = sql.SQL(
    "SELECT (finished_at AT TIME ZONE %s)::date AS day, count(*) AS messages, "
    "coalesce(sum(coalesce(sms_segments, 1)), 0) AS segments FROM messages "  # one at least
    "WHERE shop_id = %s AND channel = 'aliyun_sms' AND status = 'delivered' AND finished_at >= %s "
    "GROUP BY 1 ORDER BY 1 DESC"
)
