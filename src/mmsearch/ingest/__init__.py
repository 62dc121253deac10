"""Ingest: discover files, decide what changed, decode in workers, encode in batches, commit."""
