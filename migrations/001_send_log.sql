-- The send log: one row per delivery (or per event that sent nothing), from notify.outcomes.
-- Partitioned by the day the delivery was routed (UTC); retention drops whole days.
CREATE TABLE messages (
    day date NOT NULL,
    id text NOT NULL,                 -- the delivery id (or the event id / source of an event-level outcome)
    shop_id bigint,
    event_id text,
    delivery_id text,
    scene text,
    channel text,
    status text NOT NULL,             -- delivered | skipped | dead_lettered
    reason text,
    provider_code text,
    recipient_hash text,              -- HMAC of the phone / openid with the platform's recipient key
    recipient_masked text,
    attempts integer NOT NULL DEFAULT 1,
    replayed boolean NOT NULL DEFAULT false,
    routed_at timestamptz,
    finished_at timestamptz,          -- its final outcome (null while only its receipt is known)
    reached boolean,                  -- the provider's receipt: reached the person, or not
    reached_at timestamptz,
    receipt_code text,
    PRIMARY KEY (day, id)
) PARTITION BY RANGE (day);

CREATE INDEX messages_by_shop ON messages (shop_id, finished_at DESC, id DESC);
CREATE INDEX messages_by_recipient ON messages (recipient_hash, finished_at DESC, id DESC);

-- Where each consumer of a topic is, written in the same transaction as the rows it read.
CREATE TABLE consumed_offsets (
    consumer text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (consumer, topic, partition)
);
