"""Vector indexes: the ``VectorIndex`` contract, the planner that picks one, and the FAISS implementation.

``choose_spec(n, dim, memory_budget_bytes=...)`` returns an ``IndexSpec``
(exact ``flat`` below 50k vectors, ``hnsw`` above, ``ivfpq`` when HNSW does not
fit the memory budget); ``FaissIndex.build(spec, ids, vectors)`` builds it;
``needs_rebuild`` tells when a grown or shrunk collection should be rebuilt.
All scores are inner products of L2-normalised vectors (cosine similarity).

Importing this package does not import FAISS; the first index built does.
"""

from mmsearch.index.base import INDEX_KINDS, IndexSpec, VectorIndex
from mmsearch.index.faiss_index import FaissIndex, factory_string
from mmsearch.index.planner import choose_spec, needs_rebuild

__all__ = [
    "INDEX_KINDS",
    "FaissIndex",
    "IndexSpec",
    "VectorIndex",
    "choose_spec",
    "factory_string",
    "needs_rebuild",
]
