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
ON DUPLICATE KEY UPDATE
    created_at = VALUES(created_at),
    modified_at = VALUES(modified_at),
    current_identifier = VALUES(current_identifier),
    previous_identifier = VALUES(previous_identifier),
    external_id_kind = VALUES(external_id_kind),
    external_id = VALUES(external_id),
    address_type = VALUES(address_type),
    has_address = VALUES(has_address),
    salutation = VALUES(salutation),
    title = VALUES(title),
    first_name = VALUES(first_name),
    last_name = VALUES(last_name),
    company_name = VALUES(company_name),
    street = VALUES(street),
    postcode = VALUES(postcode),
    city = VALUES(city),
    country = VALUES(country),
    donation_receipt = VALUES(donation_receipt),
    export_state = VALUES(export_state),
    is_exported = VALUES(is_exported),
    exported_at = VALUES(exported_at),
    export_batch = VALUES(export_batch),
    is_scrubbed = VALUES(is_scrubbed),
    scrubbed_at = VALUES(scrubbed_at),
    scrub_rule = VALUES(scrub_rule);
