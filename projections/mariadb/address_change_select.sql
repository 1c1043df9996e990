-- Loads the current address_change rows a batch touches, before the batch is folded in memory.
-- ? is a JSON array of ids, read by JSON_TABLE; STRAIGHT_JOIN reads the ids first and looks
-- each row up by its primary key.
SELECT STRAIGHT_JOIN
    t.id, t.created_at, t.modified_at, t.current_identifier, t.previous_identifier,
    t.external_id_kind, t.external_id, t.address_type, t.has_address, t.salutation, t.title,
    t.first_name, t.last_name, t.company_name, t.street, t.postcode, t.city, t.country,
    t.donation_receipt, t.export_state, t.is_exported, t.exported_at, t.export_batch,
    t.is_scrubbed, t.scrubbed_at, t.scrub_rule
FROM (SELECT DISTINCT id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j0) AS j
JOIN address_change AS t ON t.id = j.id;
