-- The address-change read model: one row per address change (`domain/wmde-memberships.md`
-- §2), the token that allows a change, what it belongs to by kind and id (no foreign key: the
-- donation or application is another context), the new address while it is kept, the receipt
-- opt-out, and the export and scrub states, each in its own columns. Timestamps are
-- RFC 3339 text in UTC.

CREATE TABLE address_change (
    id                      INTEGER PRIMARY KEY CHECK (id >= 0),
    created_at              TEXT    NOT NULL,
    modified_at             TEXT    NOT NULL,
    -- The token that allows the next change (UUID v4); kept after a scrub.
    current_identifier      TEXT    NOT NULL DEFAULT '',
    -- The token used for the last change; equal to current_identifier until a change.
    previous_identifier     TEXT    NOT NULL DEFAULT '',
    -- donation, membership: what external_id names (no foreign key: another context).
    external_id_kind        TEXT    NOT NULL DEFAULT '',
    external_id             INTEGER NOT NULL DEFAULT 0 CHECK (external_id >= 0),
    -- person, company
    address_type            TEXT    NOT NULL DEFAULT '',
    -- Whether a new address was given (stays true after a scrub).
    has_address             INTEGER NOT NULL DEFAULT 0,
    -- The new address: from the unsealed address unit; '' before a change, without the key
    -- and after a scrub.
    salutation              TEXT    NOT NULL DEFAULT '',
    title                   TEXT    NOT NULL DEFAULT '',
    first_name              TEXT    NOT NULL DEFAULT '',
    last_name               TEXT    NOT NULL DEFAULT '',
    company_name            TEXT    NOT NULL DEFAULT '',
    street                  TEXT    NOT NULL DEFAULT '',
    postcode                TEXT    NOT NULL DEFAULT '',
    city                    TEXT    NOT NULL DEFAULT '',
    country                 TEXT    NOT NULL DEFAULT '',
    -- False once the donor opted out of the donation receipt.
    donation_receipt        INTEGER NOT NULL DEFAULT 1,
    -- no_data, used_not_exported, used_exported (the legacy export states)
    export_state            TEXT    NOT NULL DEFAULT 'no_data',
    -- The current version (token) was exported; a change after an export clears these.
    is_exported             INTEGER NOT NULL DEFAULT 0,
    exported_at             TEXT    NULL,
    export_batch            TEXT    NOT NULL DEFAULT '',
    is_scrubbed             INTEGER NOT NULL DEFAULT 0,
    scrubbed_at             TEXT    NULL,
    -- exported, after_grace_period
    scrub_rule              TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX address_change_by_current_identifier ON address_change (current_identifier);
CREATE INDEX address_change_by_previous_identifier ON address_change (previous_identifier);
CREATE INDEX address_change_by_external_id ON address_change (external_id_kind, external_id);
CREATE INDEX address_change_by_export_state ON address_change (export_state, modified_at);
-- The address-change scrub selection (projections/sqlite/address_change_scrub_candidates.sql)
-- reads only unscrubbed address changes that hold an address, in order of their last change:
-- its first condition repeats this index's predicate, so only the index is read and the cost
-- follows those address changes, not the table.
CREATE INDEX address_change_scrub_candidates ON address_change (modified_at)
    WHERE is_scrubbed = 0 AND has_address = 1;
