-- The highest donation_tracking id; new pairs are numbered from the next one.
SELECT COALESCE(MAX(id), 0) FROM donation_tracking;
