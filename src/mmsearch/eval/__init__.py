"""Retrieval evaluation: metrics, dataset readers, the model runner, tables and plots.

    from mmsearch.eval import read_pairs, evaluate_model
    pairs = read_pairs("dataset_flickr30k.json", split="test", root="flickr30k-images")
    result = evaluate_model(pairs, mmsearch.load_encoder("hf:openai/clip-vit-base-patch32"))
    result.metrics["t2m_R@1"], result.metrics["m2t_R@5"]

Nothing heavy is imported here: matplotlib only when a plot is drawn, media
decoders only when a video or audio set is evaluated.
"""

from mmsearch.eval.datasets import DatasetError, PairSet, read_pairs
from mmsearch.eval.metrics import (
    Ranking,
    evaluate_pairs,
    metrics_from_ranking,
    pair_rankings,
    rank_positives,
    retrieval_metrics,
)
from mmsearch.eval.runner import EvalError, EvalResult, MediaOptions, evaluate_model

__all__ = [
    "DatasetError",
    "EvalError",
    "EvalResult",
    "MediaOptions",
    "PairSet",
    "Ranking",
    "evaluate_model",
    "evaluate_pairs",
    "metrics_from_ranking",
    "pair_rankings",
    "rank_positives",
    "read_pairs",
    "retrieval_metrics",
]
