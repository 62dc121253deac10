"""The SQLite catalog: items, segments, vectors, user fields, failures, and schema migrations."""
