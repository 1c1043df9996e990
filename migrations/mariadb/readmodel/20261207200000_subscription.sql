-- The subscription read model: one row per newsletter/reminder subscription
-- (`domain/wmde-memberships.md` §3), its status, tracking and source, and the export and
-- removal states, each in its own columns. The e-mail address is not here: it stays sealed in
-- the log (and shown only by GetSubscription), so a removal has no row to blank and the
-- read model never held it. Timestamps are DATETIME(6) in UTC. MariaDB has no partial
-- indexes: these cover every row.

CREATE TABLE subscription (
    id                      BIGINT PRIMARY KEY CHECK (id >= 0),
    created_at              DATETIME(6) NOT NULL,
    -- new, confirmed
    status                  VARCHAR(255) NOT NULL DEFAULT 'new',
    confirmed_at            DATETIME(6) NULL,
    -- Lower-cased `campaign/keyword`, or ''.
    tracking                VARCHAR(255) NOT NULL DEFAULT '',
    source                  VARCHAR(255) NOT NULL DEFAULT '',
    is_exported             BOOLEAN NOT NULL DEFAULT FALSE,
    exported_at             DATETIME(6) NULL,
    export_batch            VARCHAR(255) NOT NULL DEFAULT '',
    -- Removed: the address's key destroyed (crypto-shredding).
    is_removed              BOOLEAN NOT NULL DEFAULT FALSE,
    removed_at              DATETIME(6) NULL,
    -- exported, after_grace_period, forced_removal
    removal_rule            VARCHAR(255) NOT NULL DEFAULT ''
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE INDEX subscription_by_status ON subscription (status, created_at);
CREATE INDEX subscription_by_tracking ON subscription (tracking);
-- The removal selection (projections/mariadb/subscription_scrub_candidates.sql) reads only
-- subscriptions not removed, in order of creation: the leading column confines the range to
-- them, so the cost follows them, not the table.
CREATE INDEX subscription_scrub_candidates ON subscription (is_removed, created_at);
