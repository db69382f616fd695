-- What each buyer refuses, per scope (a shop id, or 'platform'), from the preferences.changed events:
-- the view the admin API and the CLI read (the buyers lane keeps its own copy in its state store).
CREATE TABLE buyer_preferences (
    user_id text NOT NULL,
    scope text NOT NULL,               -- a shop id, or platform
    categories_off text[] NOT NULL,
    channels_off text[] NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, scope)
);
