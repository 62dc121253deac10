"""Ingest throughput: 1,000 generated JPEGs end to end (discover, decode, embed, commit).

    .venv/bin/python benchmarks/bench_ingest.py [--n 1000] [--models demo,vitb32]

For each model, indexes the same folder into a fresh library with decode worker
processes (default) and in-process decoding (``--workers 0``), and reports files/s
and the encoder's share. ``vitb32`` is the real OpenCLIP ViT-B/32 architecture with
random weights (speed does not depend on weight values). Writes
benchmarks/results/ingest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

RESULTS = Path(__file__).parent / "results" / "ingest.md"


def make_jpegs(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        # Photo-like sizes and content (smooth gradients + noise), not tiny thumbnails.
        h, w = (480, 640) if i % 2 else (600, 800)
        base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * rng.random(3)
        img = base + rng.normal(0, 20, (h, w, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            folder / f"{i:05d}.jpg", quality=85
        )


def vitb32_folder(cache: Path) -> str:
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = cache / "vitb32-random"
    if (folder / "open_clip_config.json").exists():
        return str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    cfg = open_clip.get_model_config("ViT-B-32")
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(folder / "open_clip_model.safetensors"),
    )
    pre = {
        "size": 224,
        "mean": list(open_clip.OPENAI_DATASET_MEAN),
        "std": list(open_clip.OPENAI_DATASET_STD),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": cfg, "preprocess_cfg": pre})
    )
    return str(folder)


def run_once(spec: str, media: Path, workers: int) -> dict:
    from mmsearch.library import Library

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        lib = Library.open(Path(tmp) / "lib", model=spec)
        enc = lib.encoder()
        load_s = time.perf_counter() - t0
        orig = enc.encode_pixels
        spent = [0.0]

        def timed(pixels):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            out = orig(pixels)
            spent[0] += time.perf_counter() - t
            return out

        enc.encode_pixels = timed  # type: ignore[method-assign]
        t1 = time.perf_counter()
        report = lib.add([media], workers=workers, progress=sys.stderr.isatty())
        wall = time.perf_counter() - t1
        lib.close()
    return {
        "files": report.added,
        "failed": report.failed,
        "wall_s": wall,
        "files_per_s": report.added / wall,
        "encode_s": spent[0],
        "load_s": load_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--models", default="demo,vitb32")
    args = ap.parse_args()
    cache = Path(__file__).parent / ".cache"
    media = cache / f"jpegs-{args.n}"
    if not media.exists():
        make_jpegs(media, args.n)
    specs = {"demo": "builtin:demo", "vitb32": None}
    rows = []
    for name in args.models.split(","):
        spec = specs[name] or vitb32_folder(cache)
        for workers in (2, 0):
            r = run_once(spec, media, workers)
            rows.append((name, workers, r))
            print(name, workers, r, flush=True)
    cpu = subprocess.run(
        "lscpu | grep 'Model name' | sed 's/.*: *//'", shell=True, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "## Ingest",
        "",
        f"`.venv/bin/python benchmarks/bench_ingest.py --n {args.n} --models {args.models}`",
        f"— {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}. {args.n} generated JPEGs (640×480 / 800×600), end to end "
        "(discover, hash, decode, preprocess, embed, commit, index save), CPU only.",
        "",
        "| model | decode workers | files | files/s | wall s | of which encoder s | ratio vs in-process |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    base = {name: r for name, w, r in rows if w == 0}
    for name, workers, r in rows:
        ratio = r["files_per_s"] / base[name]["files_per_s"]
        lines.append(
            f"| {name} | {workers or 'in-process'} | {r['files']} | {r['files_per_s']:.1f} | "
            f"{r['wall_s']:.1f} | {r['encode_s']:.1f} | {ratio:.2f}× |"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
