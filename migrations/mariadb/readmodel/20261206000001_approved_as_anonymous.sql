-- Whether a moderator approved the donation as anonymous: sticky, so the donor stays shown as
-- anonymous (kind `anonymous`, no salutation, no personal data, no comment) whatever donor or
-- comment change follows, as the domain's `DonationView` shows it.
ALTER TABLE donation ADD COLUMN approved_as_anonymous BOOLEAN NOT NULL DEFAULT FALSE;
