-- The subscription read model: one row per newsletter/reminder subscription
-- (`domain/wmde-memberships.md` §3), its status, tracking and source, and the export and
-- removal states, each in its own columns. The e-mail address is not here: it stays sealed in
-- the log (and shown only by GetSubscription), so a removal has no row to blank and the
-- read model never held it. Timestamps are TIMESTAMPTZ.

CREATE TABLE subscription (
    id                      BIGINT PRIMARY KEY CHECK (id >= 0),
    created_at              TIMESTAMPTZ NOT NULL,
    -- new, confirmed
    status                  TEXT NOT NULL DEFAULT 'new',
    confirmed_at            TIMESTAMPTZ NULL,
    -- Lower-cased `campaign/keyword`, or ''.
    tracking                TEXT NOT NULL DEFAULT '',
    source                  TEXT NOT NULL DEFAULT '',
    is_exported             BOOLEAN NOT NULL DEFAULT FALSE,
    exported_at             TIMESTAMPTZ NULL,
    export_batch            TEXT NOT NULL DEFAULT '',
    -- Removed: the address's key destroyed (crypto-shredding).
    is_removed              BOOLEAN NOT NULL DEFAULT FALSE,
    removed_at              TIMESTAMPTZ NULL,
    -- exported, after_grace_period, forced_removal
    removal_rule            TEXT NOT NULL DEFAULT ''
);

CREATE INDEX subscription_by_status ON subscription (status, created_at);
CREATE INDEX subscription_by_tracking ON subscription (tracking);
-- The removal selection (projections/postgres/subscription_scrub_candidates.sql) reads only
-- subscriptions not removed, in order of creation: its first condition repeats this index's
-- predicate, so only the index is read and the cost follows them, not the table.
CREATE INDEX subscription_scrub_candidates ON subscription (created_at)
    WHERE NOT is_removed;
