"""Calibration: put every source's raw scores on one scale with a meaning.

A cosine of 0.31 from CLIP, 0.31 from CLAP and a BM25 of 4.2 mean different
things, and a rank says nothing about how good the match is: the first sound
window of an audio model that knows nothing of the query is still first.
Following score normalisation in metasearch (z-score normalisation, Montague &
Aslam 2001) and score-distribution models (Manmatha et al. 2001; Arampatzis et
al. 2009, "where to stop reading a ranked list"), each raw score is compared with
the *background*: what this query scores against the library's own items.

Vector sources whose model ships a calibration for the (query, index) modality
pair (``Platt``: a logistic curve fitted on labelled pairs, as the demo model
does) use it: the probability of relevance ``p`` gives evidence ``-log10(1 - p)``,
held to what the query's background allows (``Curve``). For the others, each index a fixed random sample of its vectors is kept
(refreshed as the index grows). A query's scores against the sample give its
background: its median and its spread, the larger of the scaled median absolute
deviation and the lower half's width (the median down to the 16th percentile, one
standard deviation of a normal). Both are robust to the few items that do match
(Efron's "empirical null"); taking the larger keeps a background made of two
clusters (the silent and the loud windows of a random-weight sound model) from
passing its upper cluster off as matches. An index too small to have a background (under ``MIN_SAMPLE`` vectors) gets
a wide one (``SMALL_SPREAD``), so its matches count for little. A hit's ``z = (cosine - median) / spread``. Under the
background's normal shape, the chance that the best of the index's ``N``
vectors reaches ``z`` by chance is ``p = 1 - Phi(z)**N`` (a family-wise p-value:
the more vectors an index holds, the higher chance climbs). The hit's
*evidence* is ``-log10 p`` and its *score* ``1 - p``: 0.99 means "one chance in a
hundred that an index this size shows a match this strong for an unrelated
query". An uninformative index (random weights, or a concept its model does
not know) gives p uniform in [0, 1]: its best is as often 0.3 as 0.9, never the
1 - 1e-9 of a real match, and its evidence averages 0.43.

Lexical source. Full-text matches have no cosine background. Their evidence is
the rarity of the words matched: the sum of their ``log10(N / df)``, which is
``-log10`` of the chance that a random text holds them all (words taken as
independent), in the same units as the other sources' evidence: words that one
segment in a thousand holds are worth 3 each, words every other segment holds 0.3;
capped like the others. It is multiplied by the share of the query's word weight the
segment holds, squared, times how close together they sit (``(n + 1) / span``
words, at most 1): a rare phrase matched whole gives 3 (score 0.999); "red circle"
in a library of shape captions, where both words are everywhere, little, and less
still in "a red star left of a blue circle". Words no text holds are left out of the
query's word weight.

Fusion (``fusion.py``) adds the evidence of independent sources, as Fisher's
method adds ``-log p`` of independent tests; the hit score is ``1 - 10**-E``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmsearch.types import Vectors

SAMPLE_SIZE = 1024
"""Background vectors kept per index."""
MIN_SPREAD = 0.01
"""The smallest background spread (cosine units): a collapsed model, whose every
vector is nearly the same, must not turn hair-breadth differences into certainty."""
MIN_SAMPLE = 16
SMALL_SPREAD = 0.15
"""The spread assumed when an index is too small to measure its own."""
MAX_EVIDENCE = 6.0
"""Evidence of one source is capped at one chance in a million: past it, a model's tail
is not known well enough to say more, and one source must not drown every other."""
LEXICAL_FULL = MAX_EVIDENCE
"""The most evidence a text match gives (a rare phrase, every word present)."""
_LOG10 = math.log(10.0)


@dataclass(frozen=True)
class Background:
    """A query's background in one index: robust centre and spread, index size."""

    centre: float
    spread: float
    size: int

    @classmethod
    def of(cls, scores: np.ndarray, size: int) -> Background:
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if s.size == 0:
            return cls(0.0, MIN_SPREAD, max(1, size))
        centre = float(np.median(s))
        lower = centre - float(np.quantile(s, 0.1587))
        mad = 1.4826 * float(np.median(np.abs(s - centre)))
        floor = SMALL_SPREAD if s.size < MIN_SAMPLE else MIN_SPREAD
        return cls(centre, max(lower, mad, floor), max(1, size))

    def evidence(self, raw: np.ndarray | Sequence[float]) -> np.ndarray:
        """Evidence (``-log10`` family-wise p-value) of each raw cosine."""
        z = (np.asarray(raw, dtype=np.float64) - self.centre) / self.spread
        return np.array([_evidence(float(v), self.size) for v in z.reshape(-1)])

    def standing(self, raw: np.ndarray | Sequence[float]) -> np.ndarray:
        """How far each raw cosine stands out of the background, as ``-log10`` of its
        one-sided p-value (no correction for the index's size)."""
        z = (np.asarray(raw, dtype=np.float64) - self.centre) / self.spread
        return np.array([_evidence(float(v), 1) for v in z.reshape(-1)])


def _evidence(z: float, n: int) -> float:
    """``-log10(1 - Phi(z)**n)``, stable in both tails."""
    if z > 8.0:
        # Upper tail: log Q(z) by the asymptotic series; p = 1 - (1-Q)^n ~ n Q.
        log_q = -0.5 * z * z - math.log(z * math.sqrt(2 * math.pi)) + math.log1p(-1 / (z * z))
        log_p = math.log(n) + log_q
        return min(MAX_EVIDENCE, max(0.0, -log_p / _LOG10))
    q = 0.5 * math.erfc(z / math.sqrt(2.0))  # upper tail, exact to z ~ 8
    if q >= 1.0:
        return 0.0
    p = -math.expm1(n * math.log1p(-q))
    if p <= 0.0:
        return MAX_EVIDENCE
    return min(MAX_EVIDENCE, max(0.0, -math.log10(p)))


def score_of(evidence: float) -> float:
    """The calibrated score, 0–1, of an amount of evidence."""
    return 1.0 - 10.0 ** (-max(0.0, evidence))


def evidence_of(score: float) -> float:
    """The evidence behind a calibrated score (inverse of :func:`score_of`)."""
    s = min(max(score, 0.0), 1.0 - 1e-15)
    return -math.log10(1.0 - s)


def lexical_evidence(coverage: float, rarity: float) -> float:
    """Evidence of a text match holding ``coverage`` (0–1) of the query's word weight,
    with words whose summed ``log10(N / df)`` is ``rarity``."""
    c = min(max(coverage, 0.0), 1.0)
    return min(LEXICAL_FULL, max(0.0, rarity)) * c * c


class BackgroundSample:
    """A fixed random sample of one index's vectors, refreshed as the index grows."""

    def __init__(self) -> None:
        self._vectors: Vectors | None = None
        self._size = 0

    def stale(self, size: int) -> bool:
        if self._vectors is None:
            return True
        if self._size < SAMPLE_SIZE:
            return size != self._size
        return size > self._size * 1.25 or size < self._size * 0.8

    def set(self, vectors: Vectors, size: int) -> None:
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._size = size

    def background(self, qvec: Vectors, size: int) -> Background:
        assert self._vectors is not None
        return Background.of(self._vectors @ qvec, size)


@dataclass(frozen=True)
class Curve:
    """A model's own curve, held to what the query's background allows.

    The curve says how likely a cosine means relevance for queries like the ones it was
    fitted on; the background says whether the match stands out at all for *this*
    query. A query the model cannot read (words it never learnt all land on one
    vector, so every text matches every other) has no match that stands out, whatever
    the curve says; the evidence is the smaller of the two.
    """

    platt: Platt
    background: Background

    def evidence(self, raw: np.ndarray | Sequence[float]) -> np.ndarray:
        return np.minimum(self.platt.evidence(raw), self.background.standing(raw))


@dataclass(frozen=True)
class Platt:
    """A model's own probability of relevance for a raw cosine: ``sigmoid(a * cos + b)``.

    Fitted on labelled pairs (Platt 1999) by whoever trained the model, under even
    odds (as many relevant pairs as not), and shipped with it; used instead of the
    background when the model carries one for the (query, index) modality pair.
    """

    a: float
    b: float

    def evidence(self, raw: np.ndarray | Sequence[float]) -> np.ndarray:
        x = self.a * np.asarray(raw, dtype=np.float64) + self.b
        # -log10(1 - sigmoid(x)) = log10(1 + e^x), computed without overflow
        return np.clip(np.logaddexp(0.0, x) / _LOG10, 0.0, MAX_EVIDENCE)


def fit_platt(scores: np.ndarray, relevant: np.ndarray, steps: int = 50) -> Platt:
    """Logistic regression of ``relevant`` on ``scores``, both classes weighted alike."""
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(relevant, dtype=np.float64).reshape(-1)
    pos = max(1.0, y.sum())
    neg = max(1.0, len(y) - y.sum())
    w = np.where(y > 0, 0.5 / pos, 0.5 / neg)
    X = np.stack([x, np.ones_like(x)], axis=1)
    theta = np.zeros(2)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(X @ theta)))
        grad = X.T @ (w * (p - y))
        hess = (X * (w * p * (1 - p))[:, None]).T @ X + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return Platt(float(theta[0]), float(theta[1]))


def model_calibration(encoder: object, pair: str) -> Platt | None:
    """The Platt calibration ``encoder`` ships for ``pair`` (``text-image``, ...), if any."""
    table = getattr(encoder, "calibration", None) or {}
    ab = table.get(pair)
    return Platt(float(ab[0]), float(ab[1])) if ab else None
