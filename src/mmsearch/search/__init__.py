"""Search: query parsing, filters, per-modality ANN search and grouping into hits."""
