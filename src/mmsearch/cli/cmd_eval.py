"""``mmsearch eval``: Recall@K (both directions), ranks, mAP and nDCG of models on a pairs dataset."""

from __future__ import annotations

import argparse
import sys
from typing import Any

PLOT_KS: tuple[int, ...] = (1, 2, 5, 10, 20, 50)


def parse_ks(text: str) -> list[int]:
    """``"1,5,10"`` -> ``[1, 5, 10]``; every K a positive integer."""
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K values like 1,5,10, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"K values must be positive integers, got {text!r}")
    return ks


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        metavar="PAIRS",
        help="pairs file: JSONL/CSV of media,caption, Flickr30k/COCO Karpathy JSON, "
        "COCO captions JSON, MSR-VTT JSON/CSV, AudioCaps or Clotho CSV",
    )
    p.add_argument(
        "--model",
        "-m",
        action="append",
        default=[],
        metavar="SPEC",
        help="model to evaluate (repeatable): hf:ID, openclip:ARCH/TAG, onnx:DIR, "
        "builtin:demo or a folder",
    )
    p.add_argument(
        "--video-model",
        action="append",
        default=[],
        metavar="SPEC",
        help="video–text model (X-CLIP) for video datasets (repeatable); --model models "
        "embed sampled frames and average them",
    )
    p.add_argument(
        "--audio-model",
        action="append",
        default=[],
        metavar="SPEC",
        help="audio–text model for audio datasets (repeatable)",
    )
    p.add_argument(
        "--split",
        default="test",
        help="split to evaluate when the file has several (default: test; 'all' for every pair)",
    )
    p.add_argument("--root", help="folder the media paths are relative to (default: the file's)")
    p.add_argument("--limit", type=int, help="evaluate only the first N media items")
    p.add_argument(
        "--k",
        type=parse_ks,
        default=[1, 5, 10],
        metavar="K,K,...",
        help="K values (default 1,5,10)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="encoder batch size")
    p.add_argument("--fps", type=float, default=1.0, help="video: frames sampled per second")
    p.add_argument("--max-frames", type=int, default=16, help="video: at most this many frames")
    p.add_argument(
        "--strict-pairs",
        action="store_true",
        help="only a caption's own media item is correct, even where the file's match_key "
        "says other media fit it too",
    )
    p.add_argument("--plot", metavar="FILE.png", help="write a PNG of Recall@K curves")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _progress_bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    # delay: no bar at all for work that is done within about a second.
    return tqdm(total=total, unit="item", desc=desc, dynamic_ncols=True, leave=False, delay=1.0)


def _load(spec: str, role: str) -> Any:
    """An encoder for ``role``: ``image`` (image–text), ``video`` (video–text) or ``audio``."""
    if role == "image":
        from mmsearch.encoders.registry import load_encoder

        return load_encoder(spec)
    from mmsearch.encoders import av_registry

    if role == "video":
        return av_registry.load_video_encoder(spec)
    return av_registry.load_audio_encoder(spec)


def _models(args: argparse.Namespace, modality: str) -> list[tuple[str, str]]:
    """(spec, role) of every model to evaluate on a ``modality`` dataset."""
    from mmsearch.errors import QueryError

    if modality == "audio":
        if args.video_model:
            raise QueryError("--video-model is for video datasets; this one holds audio")
        specs = args.audio_model or args.model
        if not specs:
            raise QueryError("give an audio–text model to evaluate with --audio-model SPEC")
        return [(s, "audio") for s in specs]
    if args.audio_model:
        raise QueryError(f"--audio-model is for audio datasets; this one holds {modality}")
    if args.video_model and modality != "video":
        raise QueryError(f"--video-model is for video datasets; this one holds {modality}")
    models = [(s, "image") for s in args.model] + [(s, "video") for s in args.video_model]
    if not models:
        raise QueryError("give a model to evaluate with --model SPEC")
    return models


def _dataset_dict(pairs: Any) -> dict[str, Any]:
    return {
        "name": pairs.name,
        "format": pairs.format,
        "modality": pairs.modality,
        "n_media": pairs.n_media,
        "n_captions": pairs.n_captions,
        "missing_media": len(pairs.missing),
        "missing_examples": pairs.missing[:5],
        "match_keys": None if pairs.media_keys is None else len(set(pairs.media_keys)),
    }


def run(args: argparse.Namespace) -> int:
    from mmsearch.cli.output import emit_json
    from mmsearch.errors import QueryError
    from mmsearch.eval.datasets import read_pairs
    from mmsearch.eval.report import format_results
    from mmsearch.eval.runner import MediaOptions, evaluate_model

    if args.limit is not None and args.limit < 1:
        raise QueryError("--limit must be at least 1")
    pairs = read_pairs(args.data, split=args.split, root=args.root, limit=args.limit)
    models = _models(args, pairs.modality)
    show = not (args.no_progress or args.json) and sys.stderr.isatty()
    options = MediaOptions(fps=args.fps, max_frames=args.max_frames)
    results = []
    for spec, role in models:
        encoder = _load(spec, role)
        bar = _progress_bar(pairs.n_media + pairs.n_captions, spec) if show else None
        try:
            results.append(
                evaluate_model(
                    pairs,
                    encoder,
                    ks=args.k,
                    batch_size=args.batch_size,
                    options=options,
                    progress=bar.update if bar else None,
                    use_match_keys=not args.strict_pairs,
                )
            )
        finally:
            if bar is not None:
                bar.close()
        del encoder
    plot = None
    if args.plot:
        from mmsearch.eval.plot import plot_recall_curves

        plot = str(plot_recall_curves(results, args.plot, sorted({*PLOT_KS, *args.k})))
    if args.json:
        emit_json(
            {
                "dataset": _dataset_dict(pairs),
                "results": [r.to_dict() for r in results],
                "plot": plot,
            }
        )
        return 0
    print(format_results(results))
    if pairs.missing:
        print(
            f"{len(pairs.missing)} media files were not found (pairs dropped), e.g. {pairs.missing[0]}"
        )
    if plot:
        print(f"plot: {plot}")
    return 0
