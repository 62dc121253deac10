"""Retrieval metrics against answers worked out by hand, and against a brute-force sort."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmsearch.eval import metrics
from mmsearch.eval.metrics import evaluate_pairs, rank_positives, retrieval_metrics

L2 = math.log2

# q0's positive (2) ranks 2nd; q1's positive (0) ranks 4th; q2's positives (0, 3) rank 1st and 4th.
SIM = np.array(
    [
        [0.9, 0.1, 0.5, 0.3],
        [0.2, 0.8, 0.4, 0.6],
        [0.7, 0.6, 0.5, 0.4],
    ]
)
POS = [[2], [0], [0, 3]]


def test_recall_ranks_map_ndcg_by_hand() -> None:
    m = retrieval_metrics(SIM, POS, ks=(1, 2, 4))
    assert m["R@1"] == pytest.approx(1 / 3)
    assert m["R@2"] == pytest.approx(2 / 3)
    assert m["R@4"] == pytest.approx(1.0)
    assert m["median_rank"] == 2.0  # best ranks 2, 4, 1
    assert m["mean_rank"] == pytest.approx(7 / 3)
    # AP@4: q0 1/2; q1 1/4; q2 (1/1 + 2/4) / 2 = 0.75
    assert m["mAP@4"] == pytest.approx((0.5 + 0.25 + 0.75) / 3)
    # AP@1: only q2 has a positive at rank 1, normalised by min(2 positives, K=1)
    assert m["mAP@1"] == pytest.approx(1 / 3)
    # AP@2: q0 (1/2)/1; q1 0; q2 (1/1)/min(2, 2)
    assert m["mAP@2"] == pytest.approx((0.5 + 0 + 0.5) / 3)
    assert m["mAP"] == pytest.approx(m["mAP@4"])
    ndcg_q2 = (1 + 1 / L2(5)) / (1 + 1 / L2(3))
    assert m["nDCG@4"] == pytest.approx((1 / L2(3) + 1 / L2(5) + ndcg_q2) / 3)
    assert m["nDCG@1"] == pytest.approx((0 + 0 + 1) / 3)
    assert m["n_queries"] == 3 and m["n_gallery"] == 4
    assert m["n_queries_without_positives"] == 0


def test_ties_are_pessimistic() -> None:
    flat = np.full((1, 4), 0.5)
    # one positive tied with three negatives: ranked after all of them
    assert retrieval_metrics(flat, [[2]], ks=(3, 4))["R@3"] == 0.0
    assert retrieval_metrics(flat, [[0]], ks=(4,))["median_rank"] == 4.0
    # two positives tied with two negatives: negatives first, then the positives in order
    ranking = rank_positives(flat, [[1, 2]])
    assert ranking.positive_ranks[0].tolist() == [3, 4]
    m = retrieval_metrics(flat, [[1, 2]], ks=(2, 4))
    assert m["R@2"] == 0.0 and m["R@4"] == 1.0
    assert m["mAP@4"] == pytest.approx((1 / 3 + 2 / 4) / 2)
    # a tie between one positive and one negative, either way round, ranks the positive 3rd
    row = np.array([[0.9, 0.7, 0.7, 0.1]])
    assert rank_positives(row, [[2]]).positive_ranks[0].tolist() == [3]
    assert rank_positives(row, [[1]]).positive_ranks[0].tolist() == [3]
    # NaN scores rank last
    nan_row = np.array([[np.nan, 0.2, 0.1]])
    assert rank_positives(nan_row, [[0]]).positive_ranks[0].tolist() == [3]


def test_k_larger_than_gallery_is_clamped() -> None:
    sim = np.array([[0.1, 0.9, 0.5]])
    m = retrieval_metrics(sim, [[0]], ks=(1, 3, 100))
    assert m["R@1"] == 0.0
    assert m["R@100"] == 1.0 == m["R@3"]
    assert m["mAP@100"] == pytest.approx(1 / 3) == pytest.approx(m["mAP@3"])
    assert m["nDCG@100"] == pytest.approx(1 / L2(4)) == pytest.approx(m["nDCG@3"])


def test_queries_without_positives_are_left_out_and_counted() -> None:
    sim = np.array([[0.9, 0.1], [0.5, 0.6], [0.2, 0.8]])
    m = retrieval_metrics(sim, [[0], [], [0]], ks=(1,))
    assert m["n_queries_without_positives"] == 1 and m["n_queries"] == 3
    assert m["R@1"] == 0.5  # q0 hit, q2 miss; q1 not counted
    assert m["mean_rank"] == 1.5
    nothing = retrieval_metrics(sim, [[], [], []], ks=(1,))
    assert math.isnan(nothing["R@1"]) and math.isnan(nothing["mAP"])
    assert nothing["n_queries_without_positives"] == 3


def test_graded_ndcg() -> None:
    sim = np.array([[0.9, 0.8, 0.7, 0.6]])
    rel = [{0: 1.0, 2: 3.0, 3: 2.0}]
    m = retrieval_metrics(sim, [[0, 2, 3]], ks=(3,), relevance=rel)
    dcg = 1 / L2(2) + 3 / L2(4)  # gain 1 at rank 1, gain 3 at rank 3; rank 4 is cut
    idcg = 3 / L2(2) + 2 / L2(3) + 1 / L2(4)
    assert m["nDCG@3"] == pytest.approx(dcg / idcg)
    # binary relevance for the same ranking: gains all 1
    b = retrieval_metrics(sim, [[0, 2, 3]], ks=(3,))
    assert b["nDCG@3"] == pytest.approx((1 + 1 / L2(4)) / (1 + 1 / L2(3) + 1 / L2(4)))
    # ties among graded items: the gain-0 item first, then lower gains
    flat = np.full((1, 3), 0.5)
    t = retrieval_metrics(flat, [[0, 1]], ks=(3,), relevance=[{0: 1.0, 1: 2.0}])
    assert t["nDCG@3"] == pytest.approx((1 / L2(3) + 2 / L2(4)) / (2 + 1 / L2(3)))


def test_multiple_captions_per_image_both_directions() -> None:
    media = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    texts = np.array(
        [
            [1.0, 0.1, 0],  # caption 0 of image 0
            [0.2, 1.0, 0],  # caption 1 of image 0 (looks like image 1)
            [0, 1.0, 0.3],  # caption of image 1
            [0, 0, 1.0],  # caption of image 2
        ]
    )
    m = evaluate_pairs(texts, media, [0, 0, 1, 2], ks=(1, 2))
    assert m["t2m_R@1"] == pytest.approx(3 / 4)  # caption 1 finds image 1 first
    assert m["t2m_R@2"] == 1.0
    assert m["t2m_mean_rank"] == pytest.approx((1 + 2 + 1 + 1) / 4)
    # image 1 as query: caption 1 (cos 0.981) beats its own caption 2 (cos 0.958)
    assert m["m2t_R@1"] == pytest.approx(2 / 3)
    assert m["m2t_R@2"] == 1.0
    # image 0's positives are captions 0 and 1, ranked 1 and 2: AP 1
    assert m["m2t_mAP@2"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    assert m["m2t_n_queries"] == 3 and m["t2m_n_queries"] == 4
    assert m["m2t_n_gallery"] == 4 and m["t2m_n_gallery"] == 3


def test_image_without_caption_counts_as_query_without_positives() -> None:
    media = np.eye(3)
    texts = np.eye(3)[:2]
    m = evaluate_pairs(texts, media, [0, 1], ks=(1,))
    assert m["m2t_n_queries_without_positives"] == 1
    assert m["m2t_R@1"] == 1.0 and m["t2m_R@1"] == 1.0


def _brute_force(sim: np.ndarray, positives: list[list[int]], k: int) -> tuple[list[int], float]:
    """Sort each row by (score desc, negatives before positives, gallery index): best ranks, mAP@k."""
    best, aps = [], []
    for q, row in enumerate(sim):
        is_pos = np.zeros(row.size, dtype=int)
        is_pos[positives[q]] = 1
        hits = is_pos[np.lexsort((np.arange(row.size), is_pos, -row))]
        best.append(int(np.flatnonzero(hits)[0]) + 1)
        found, precision_sum = 0, 0.0
        for rank, hit in enumerate(hits[:k], 1):
            if hit:
                found += 1
                precision_sum += found / rank
        aps.append(precision_sum / min(len(positives[q]), k))
    return best, float(np.mean(aps))


@pytest.mark.parametrize("block_elements", [4_000_000, 60])
def test_matches_brute_force_sort_with_many_ties(
    block_elements: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", block_elements)  # one block, or many
    rng = np.random.default_rng(0)
    sim = rng.integers(0, 4, size=(60, 25)).astype(np.float32)  # few values: ties everywhere
    positives = [sorted(rng.choice(25, size=rng.integers(1, 4), replace=False)) for _ in range(60)]
    best, map5 = _brute_force(sim, positives, 5)
    assert rank_positives(sim, positives).best_ranks.tolist() == best
    m = retrieval_metrics(sim, positives, ks=(1, 5))
    assert m["R@5"] == pytest.approx(np.mean(np.array(best) <= 5))
    assert m["mAP@5"] == pytest.approx(map5)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        retrieval_metrics(SIM, [[4], [0], [0]])
    with pytest.raises(ValueError, match="positive sets"):
        retrieval_metrics(SIM, [[0]])
    with pytest.raises(ValueError, match="at least 1"):
        retrieval_metrics(SIM, POS, ks=(0,))
    with pytest.raises(ValueError, match="dim"):
        evaluate_pairs(np.ones((2, 3)), np.ones((2, 4)), [0, 1])


def test_media_keys_make_duplicates_interchangeable() -> None:
    media = np.array([[1.0, 0, 0], [0.9, 0.1, 0], [0, 0, 1.0]])  # media 0 and 1: same description
    texts = np.array([[0.9, 0.1, 0], [1.0, 0, 0], [0, 0, 1.0]])  # captions 0, 1 fit the other best
    strict = evaluate_pairs(texts, media, [0, 1, 2], ks=(1,))
    assert strict["t2m_R@1"] == pytest.approx(1 / 3) and strict["m2t_R@1"] == pytest.approx(1 / 3)
    keyed = evaluate_pairs(texts, media, [0, 1, 2], ks=(1, 2), media_keys=["a", "a", "b"])
    assert keyed["t2m_R@1"] == 1.0 and keyed["m2t_R@1"] == 1.0
    assert keyed["m2t_mAP@2"] == 1.0  # media 0's positives are captions 0 and 1, ranked 1 and 2
    with pytest.raises(ValueError, match="media keys"):
        evaluate_pairs(texts, media, [0, 1, 2], media_keys=["a"])
