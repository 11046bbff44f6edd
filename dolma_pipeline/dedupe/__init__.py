"""`dolma dedupe`: exact and MinHash near-duplicate detection (see docs/dedupe.md)."""
