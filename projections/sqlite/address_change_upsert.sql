-- Writes the folded rows of the address changes a batch touched (one row each).
-- The projector repeats the VALUES tuple once per row (multi-row insert, one statement
-- per chunk of rows), binding the columns in the order listed.
INSERT INTO address_change (
    id, created_at, modified_at, current_identifier, previous_identifier, external_id_kind,
    external_id, address_type, has_address, salutation, title, first_name, last_name,
    company_name, street, postcode, city, country, donation_receipt, export_state, is_exported,
    exported_at, export_batch, is_scrubbed, scrubbed_at, scrub_rule
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    created_at = excluded.created_at,
    modified_at = excluded.modified_at,
    current_identifier = excluded.current_identifier,
    previous_identifier = excluded.previous_identifier,
    external_id_kind = excluded.external_id_kind,
    external_id = excluded.external_id,
    address_type = excluded.address_type,
    has_address = excluded.has_address,
    salutation = excluded.salutation,
    title = excluded.title,
    first_name = excluded.first_name,
    last_name = excluded.last_name,
    company_name = excluded.company_name,
    street = excluded.street,
    postcode = excluded.postcode,
    city = excluded.city,
    country = excluded.country,
    donation_receipt = excluded.donation_receipt,
    export_state = excluded.export_state,
    is_exported = excluded.is_exported,
    exported_at = excluded.exported_at,
    export_batch = excluded.export_batch,
    is_scrubbed = excluded.is_scrubbed,
    scrubbed_at = excluded.scrubbed_at,
    scrub_rule = excluded.scrub_rule;
