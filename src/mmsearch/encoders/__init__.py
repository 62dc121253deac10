"""Encoders map text and images into a shared embedding space; one backend per file."""
