"""Cross-attention rerankers: re-score the top of a fused result list (see base.py)."""
