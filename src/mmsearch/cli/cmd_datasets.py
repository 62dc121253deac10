"""``mmsearch datasets``: write a synthetic pairs dataset; show what a pairs file holds."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="datasets_command", metavar="ACTION")
    syn = sub.add_parser(
        "synthetic",
        help="write generated captioned shape images and a pairs JSONL",
        description="Write N generated images (coloured shapes, deterministic by seed) under "
        "OUT/images and OUT/pairs.jsonl with one {media, caption, ...} line per caption. "
        "Lines of images with a held-out colour×shape combination have split 'test', "
        "the others 'train'.",
    )
    syn.add_argument("--out", required=True, help="output folder")
    syn.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    syn.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    syn.add_argument(
        "--lang",
        choices=["en", "zh", "both"],
        default="en",
        help="caption language; 'both' writes an English and a Chinese line per image",
    )
    syn.add_argument(
        "--holdout",
        action="store_true",
        help="only images with held-out colour×shape combinations (a test set)",
    )
    syn.add_argument(
        "--train-only",
        action="store_true",
        help="only images without held-out combinations (a training set)",
    )
    syn.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    syn.add_argument("--format", choices=["png", "jpg"], default="png", help="image format")
    syn.add_argument("--json", action="store_true", help="machine-readable output")

    info = sub.add_parser("info", help="read a pairs file and show its format, sizes and splits")
    info.add_argument("path", help="pairs file")
    info.add_argument("--split", default="all", help="split to read (default: all)")
    info.add_argument("--root", help="folder the media paths are relative to")
    info.add_argument("--json", action="store_true", help="machine-readable output")


def _synthetic(args: argparse.Namespace) -> int:
    from mmsearch.cli.output import emit_json
    from mmsearch.datasets.synthetic import Split
    from mmsearch.errors import QueryError
    from mmsearch.eval.synthetic import write_synthetic_pairs

    if args.n < 1:
        raise QueryError("--n must be at least 1")
    if args.holdout and args.train_only:
        raise QueryError("--holdout and --train-only exclude each other")
    split: Split = "heldout" if args.holdout else "train" if args.train_only else "all"
    written = write_synthetic_pairs(
        args.out, args.n, args.seed, lang=args.lang, split=split, size=args.size,
        image_format=args.format,
    )  # fmt: skip
    if args.json:
        emit_json(written.to_dict())
    else:
        print(
            f"wrote {written.n_images} images and {written.n_pairs} pairs "
            f"({written.n_test} images in split 'test') to {written.pairs}"
        )
    return 0


def _info(args: argparse.Namespace) -> int:
    from collections import Counter

    from mmsearch.cli.output import emit_json
    from mmsearch.eval.datasets import read_pairs

    pairs = read_pairs(args.path, split=args.split, root=args.root)
    splits = Counter(str(e.get("split")) for e in pairs.extra if e.get("split") is not None)
    per_media = [len(c) for c in pairs.captions_of()]
    payload = {
        "name": pairs.name,
        "format": pairs.format,
        "modality": pairs.modality,
        "n_media": pairs.n_media,
        "n_captions": pairs.n_captions,
        "captions_per_media": {"min": min(per_media), "max": max(per_media)},
        "splits": dict(splits),
        "missing_media": len(pairs.missing),
        "missing_examples": pairs.missing[:5],
    }
    if args.json:
        emit_json(payload)
    else:
        for key, value in payload.items():
            print(f"{key}: {value}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.datasets_command == "synthetic":
        return _synthetic(args)
    if args.datasets_command == "info":
        return _info(args)
    print("usage: mmsearch datasets {synthetic,info} ... (see mmsearch datasets --help)")
    return 2
