"""consultation-intake: take in, store, read and acknowledge a consultation's emailed responses."""
