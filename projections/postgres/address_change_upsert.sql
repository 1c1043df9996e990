-- Writes the folded rows of the address changes a batch touched (one row each).
-- One statement per batch: every column is bound as an array ($1 = all ids, ...) and
-- UNNEST turns the arrays back into rows.
INSERT INTO address_change (
    id, created_at, modified_at, current_identifier, previous_identifier, external_id_kind,
    external_id, address_type, has_address, salutation, title, first_name, last_name,
    company_name, street, postcode, city, country, donation_receipt, export_state, is_exported,
    exported_at, export_batch, is_scrubbed, scrubbed_at, scrub_rule
)
SELECT
    u.id, u.created_at, u.modified_at, u.current_identifier, u.previous_identifier,
    u.external_id_kind, u.external_id, u.address_type, u.has_address, u.salutation, u.title,
    u.first_name, u.last_name, u.company_name, u.street, u.postcode, u.city, u.country,
    u.donation_receipt, u.export_state, u.is_exported, u.exported_at, u.export_batch,
    u.is_scrubbed, u.scrubbed_at, u.scrub_rule
FROM UNNEST(
    $1::BIGINT[],
    $2::TIMESTAMPTZ[],
    $3::TIMESTAMPTZ[],
    $4::TEXT[],
    $5::TEXT[],
    $6::TEXT[],
    $7::BIGINT[],
    $8::TEXT[],
    $9::BOOLEAN[],
    $10::TEXT[],
    $11::TEXT[],
    $12::TEXT[],
    $13::TEXT[],
    $14::TEXT[],
    $15::TEXT[],
    $16::TEXT[],
    $17::TEXT[],
    $18::TEXT[],
    $19::BOOLEAN[],
    $20::TEXT[],
    $21::BOOLEAN[],
    $22::TIMESTAMPTZ[],
    $23::TEXT[],
    $24::BOOLEAN[],
    $25::TIMESTAMPTZ[],
    $26::TEXT[]
) AS u (
    id, created_at, modified_at, current_identifier, previous_identifier, external_id_kind,
    external_id, address_type, has_address, salutation, title, first_name, last_name,
    company_name, street, postcode, city, country, donation_receipt, export_state, is_exported,
    exported_at, export_batch, is_scrubbed, scrubbed_at, scrub_rule
)
ON CONFLICT (id) DO UPDATE SET
    created_at = EXCLUDED.created_at,
    modified_at = EXCLUDED.modified_at,
    current_identifier = EXCLUDED.current_identifier,
    previous_identifier = EXCLUDED.previous_identifier,
    external_id_kind = EXCLUDED.external_id_kind,
    external_id = EXCLUDED.external_id,
    address_type = EXCLUDED.address_type,
    has_address = EXCLUDED.has_address,
    salutation = EXCLUDED.salutation,
    title = EXCLUDED.title,
    first_name = EXCLUDED.first_name,
    last_name = EXCLUDED.last_name,
    company_name = EXCLUDED.company_name,
    street = EXCLUDED.street,
    postcode = EXCLUDED.postcode,
    city = EXCLUDED.city,
    country = EXCLUDED.country,
    donation_receipt = EXCLUDED.donation_receipt,
    export_state = EXCLUDED.export_state,
    is_exported = EXCLUDED.is_exported,
    exported_at = EXCLUDED.exported_at,
    export_batch = EXCLUDED.export_batch,
    is_scrubbed = EXCLUDED.is_scrubbed,
    scrubbed_at = EXCLUDED.scrubbed_at,
    scrub_rule = EXCLUDED.scrub_rule;
