"""Calibration: evidence has one meaning whatever the source (see search/calibrate.py)."""

from __future__ import annotations

import numpy as np

from mmsearch.search.calibrate import (
    MIN_SAMPLE,
    Background,
    Platt,
    evidence_of,
    fit_platt,
    lexical_evidence,
    score_of,
)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_an_uninformative_index_gives_chance_level_evidence() -> None:
    rng = np.random.default_rng(0)
    items = _unit(rng.normal(size=(3000, 64)))
    tops = []
    for _ in range(300):
        q = _unit(rng.normal(size=64))
        scores = items @ q
        bg = Background.of(scores[:1024], len(items))
        tops.append(float(bg.evidence([scores.max()])[0]))
    tops_a = np.array(tops)
    # The best of an index that knows nothing is a p-value drawn about uniformly: its evidence
    # -log10(U) has mean 1/ln 10 = 0.43 and exceeds 2 once in a hundred.
    assert 0.15 < tops_a.mean() < 0.65  # bounded cosines have lighter tails: a little less
    assert (tops_a > 2).mean() < 0.04


def test_a_real_match_stands_out() -> None:
    rng = np.random.default_rng(1)
    items = _unit(rng.normal(size=(3000, 64)))
    q = _unit(rng.normal(size=64))
    match = _unit(q + 0.3 * _unit(rng.normal(size=64)))
    bg = Background.of(items[:1024] @ q, len(items) + 1)
    ev = float(bg.evidence([float(match @ q)])[0])
    assert ev > 5 and score_of(ev) > 0.99999


def test_a_tiny_index_counts_for_little() -> None:
    bg = Background.of(np.array([0.8]), 1)
    assert bg.spread >= 0.1 and MIN_SAMPLE > 1
    assert float(bg.evidence([0.8])[0]) < 0.5


def test_score_and_evidence_are_inverse() -> None:
    for ev in (0.0, 0.3, 1.0, 2.5, 7.0):
        assert abs(evidence_of(score_of(ev)) - ev) < 1e-6
    assert score_of(2.0) == 0.99


def test_lexical_evidence_grows_with_coverage() -> None:
    assert lexical_evidence(0.0, 5.0) == 0.0
    assert lexical_evidence(0.5, 5.0) < lexical_evidence(1.0, 5.0)
    assert score_of(lexical_evidence(1.0, 5.0)) > 0.99
    # Words half the library holds say little, even all of them.
    assert lexical_evidence(1.0, 0.6) < 1.0


def test_platt_fit_recovers_the_curve() -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, 20000)
    p = 1 / (1 + np.exp(-(12 * x - 7)))
    y = rng.random(20000) < p
    fit = fit_platt(x, y)
    # Balanced weighting shifts the intercept by the log prior odds; the slope is kept.
    assert abs(fit.a - 12) < 1.5
    ev = Platt(fit.a, fit.b).evidence(np.array([0.1, 0.9]))
    assert ev[0] < 0.1 < 1.0 < ev[1]
