-- Loads the current address_change rows a batch touches, before the batch is folded in memory.
-- ?1 is a JSON array of ids.
SELECT
    id, created_at, modified_at, current_identifier, previous_identifier, external_id_kind,
    external_id, address_type, has_address, salutation, title, first_name, last_name,
    company_name, street, postcode, city, country, donation_receipt, export_state, is_exported,
    exported_at, export_batch, is_scrubbed, scrubbed_at, scrub_rule
FROM address_change
WHERE id IN (SELECT value FROM json_each(?1));
