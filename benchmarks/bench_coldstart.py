"""Cold start: a one-off ``mmsearch search`` from the shell, per encoder backend.

    .venv/bin/python benchmarks/bench_coldstart.py [--runs 5] [--items 300]

Builds one library of generated images with the real OpenCLIP ViT-B/32
architecture (random weights; speed does not depend on weight values), exports
the same model to ONNX (fp32 and int8), then times fresh ``mmsearch search``
processes (imports + model load + query encoding + search + output) for:
``--help``, the ONNX encoders, the open_clip (torch) encoder, and the shipped
``builtin:demo`` model on its own library. The ONNX export shares the source
model's embedding space, so it searches the library built with the torch model.
Writes benchmarks/results/coldstart.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_ingest import make_jpegs, vitb32_folder  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "coldstart.md"
MMSEARCH = str(Path(sys.executable).parent / "mmsearch")


def timed(cmd: list[str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--items", type=int, default=300)
    args = ap.parse_args()
    cache = Path(__file__).parent / ".cache"
    media = cache / f"jpegs-{args.items}"
    if not media.exists():
        make_jpegs(media, args.items)
    torch_model = vitb32_folder(cache)

    from mmsearch.encoders.onnx_export import export_onnx_command

    onnx_fp32 = cache / "vitb32-onnx"
    onnx_int8 = cache / "vitb32-onnx-int8"
    if not (onnx_fp32 / "mmsearch_onnx.json").exists():
        export_onnx_command(torch_model, str(onnx_fp32), None)
    if not (onnx_int8 / "mmsearch_onnx.json").exists():
        export_onnx_command(torch_model, str(onnx_int8), "int8")

    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "lib")
        demo_lib = os.path.join(tmp, "demo")
        subprocess.run(
            [MMSEARCH, "index", str(media), "-l", lib, "-m", torch_model, "--json"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [MMSEARCH, "index", str(media), "-l", demo_lib, "-m", "builtin:demo", "--json"],
            check=True,
            capture_output=True,
        )
        q = ["search", "a red car at night", "-k", "10", "--json"]
        cases = [
            ("mmsearch --help", [MMSEARCH, "--help"]),
            ("search, onnx fp32 (ViT-B/32)", [MMSEARCH, *q, "-l", lib, "-m", str(onnx_fp32)]),
            ("search, onnx int8 (ViT-B/32)", [MMSEARCH, *q, "-l", lib, "-m", str(onnx_int8)]),
            ("search, open_clip torch (ViT-B/32)", [MMSEARCH, *q, "-l", lib]),
            ("search, builtin:demo (torch)", [MMSEARCH, *q, "-l", demo_lib]),
        ]
        rows = [(name, *timed(cmd, args.runs)) for name, cmd in cases]
    cpu = subprocess.run(
        "lscpu | grep 'Model name' | sed 's/.*: *//'", shell=True, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "## Cold start",
        "",
        f"`.venv/bin/python benchmarks/bench_coldstart.py --runs {args.runs} --items {args.items}` — "
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}. "
        f"Fresh process each run (OS file cache warm), library of {args.items} images; median and best "
        f"of {args.runs}.",
        "",
        "| command | median s | best s | speed-up vs open_clip torch |",
        "| --- | --- | --- | --- |",
    ]
    torch_median = next(m for n, m, _ in rows if "open_clip" in n)
    for name, med, best in rows:
        lines.append(f"| {name} | {med:.2f} | {best:.2f} | {torch_median / med:.1f}× |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
