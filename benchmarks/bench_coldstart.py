"""Cold start: a one-off ``mmsearch search`` from the shell per backend, side by side with rclip.

    .venv/bin/python benchmarks/bench_coldstart.py [--runs 5] [--items 300] [--python312 PATH]

Builds a folder of generated photos, the real OpenCLIP ViT-B/32 architecture with
random weights (speed does not depend on weight values), its ONNX exports (fp32
and int8; they share the source model's space, so they search the same library)
and transformers' ``CLIPModel(CLIPConfig())`` (the same sizes, random weights).
Then it times fresh processes (imports + model load + query encoding + search +
output): ``--help``, text and image queries with the ONNX export and with the
shipped ``builtin:demo`` model, and text queries with the open_clip and
transformers (torch) backends.

rclip 4.x runs next to them on the same model: it needs Python >= 3.12, so it
gets its own venv (benchmarks/.cache/rclip-venv, ``pip install rclip``), and its
data folder (``$RCLIP_DATADIR``) gets our fp32 text tower as its
``textual.onnx`` (one file, as rclip ships its models; the input renamed to
rclip's ``input``) and an index of the same 300 vectors, written with rclip's own
``rclip.db.DB``. ``rclip -n`` (no indexing) then answers the same text query. A
second rclip row, for reference, gives rclip the graph with mmsearch's aligned
weight file instead (what part of the difference is the file layout).

Each round runs every case once, in a fixed order with mmsearch's fp32 search
right before rclip, so each pair sees the same machine load; CPU time is the
child's user+sys from ``os.wait4``. Reported: median and range over the rounds,
and the mmsearch/rclip CPU ratio of each round (median and range).
Writes benchmarks/results/coldstart.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_ingest import make_jpegs, vitb32_folder  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "coldstart.md"
MMSEARCH = str(Path(sys.executable).parent / "mmsearch")
QUERY = "a red car at night"
RCLIP_SPEC = "rclip>=4,<5"
RCLIP_MODEL_DIR = "ViT-B-32-256-datacomp_s34b_b86k"  # rclip.model_download.MODEL_SUBDIR
RCLIP_LEGAL = ("LICENSE", "OPENAI-CLIP-MIT.txt", "README.md", "THIRD_PARTY_NOTICES.md")
PAIR = ("search, onnx fp32 (ViT-B/32)", "rclip -n (ViT-B/32 fp32, one ONNX file)")


@dataclass
class Case:
    name: str
    cmd: list[str]
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)


# ---- models ---------------------------------------------------------------------------------


def onnx_export(source: str, out: Path, quantize: str | None) -> Path:
    """Export ``source`` unless ``out`` holds an export in the current layout already."""
    from mmsearch.encoders.onnx_export import export_onnx_command

    if not (out / "mmsearch_onnx.json").exists() or not (out / "text.onnx.data").exists():
        shutil.rmtree(out, ignore_errors=True)
        export_onnx_command(source, str(out), quantize)
    return out


def hf_clip_folder(cache: Path) -> Path:
    """transformers ``CLIPModel(CLIPConfig())`` (clip-vit-base-patch32 sizes), random weights,
    with a CLIP tokenizer made from open_clip's BPE vocabulary (OpenAI CLIP's)."""
    folder = cache / "hf-clip-vit-base-patch32-random"
    if (folder / "config.json").exists():
        return folder
    import torch
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    simple = SimpleTokenizer()
    names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {names.get(t, t): i for t, i in simple.encoder.items()}
    merges = [pair for pair, _ in sorted(simple.bpe_ranks.items(), key=lambda kv: kv[1])]
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig()).eval().save_pretrained(folder)
    CLIPProcessor(CLIPImageProcessor(), tokenizer).save_pretrained(folder)
    return folder


def index(media: Path, lib: str, model: str) -> None:
    cmd = [MMSEARCH, "index", str(media), "-l", lib, "-m", model, "--json"]
    subprocess.run(cmd, check=True, capture_output=True)


# ---- rclip ----------------------------------------------------------------------------------


def find_python312(given: str | None) -> str | None:
    candidates = [given] if given else []
    candidates += [shutil.which("python3.12") or "", "/root/.pyenv/versions/3.12.1/bin/python3.12"]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def rclip_venv(cache: Path, python: str) -> Path:
    """benchmarks/.cache/rclip-venv with rclip from PyPI (made once)."""
    venv = cache / "rclip-venv"
    if not (venv / "bin" / "rclip").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", RCLIP_SPEC]
        subprocess.run(pip, check=True)
    return venv


def rclip_graph(src: Path, dst: Path, *, aligned: bool = False) -> None:
    """Our graph with its input named ``input``, as rclip calls its sessions: one file (as
    rclip ships its models), or with mmsearch's aligned weight file (``aligned``)."""
    if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
        return
    import onnx

    from mmsearch.encoders.onnx_weights import save_aligned

    model = onnx.load(str(src))
    old = model.graph.input[0].name
    model.graph.input[0].name = "input"
    for node in model.graph.node:
        node.input[:] = ["input" if name == old else name for name in node.input]
    if aligned:
        save_aligned(model, dst)
    else:
        onnx.save_model(model, str(dst))


def rclip_data(cache: Path, onnx_fp32: Path, *, aligned: bool = False) -> Path:
    """An rclip data folder holding our export in place of rclip's downloaded model."""
    import open_clip

    data = cache / ("rclip-data-aligned" if aligned else "rclip-data")
    models = data / RCLIP_MODEL_DIR
    models.mkdir(parents=True, exist_ok=True)
    rclip_graph(onnx_fp32 / "text.onnx", models / "textual.onnx", aligned=aligned)
    visual = models / "visual.onnx"  # rclip checks that it exists; a text query never loads it
    if aligned and not visual.exists():
        visual.symlink_to(rclip_data(cache, onnx_fp32) / RCLIP_MODEL_DIR / "visual.onnx")
    rclip_graph(onnx_fp32 / "image.onnx", visual)
    (data / "tokenizer").mkdir(exist_ok=True)
    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    shutil.copy(bpe, data / "tokenizer" / bpe.name)
    for name in RCLIP_LEGAL:  # rclip checks that its model's licence files were downloaded
        (data / name).write_text("placeholder written by benchmarks/bench_coldstart.py\n")
    return data


FILL_DB = """
import json, sys
import numpy as np
from rclip.db import DB
rows = json.load(open(sys.argv[2]))
vectors = np.load(sys.argv[3])
db = DB(sys.argv[1])
for row, vec in zip(rows, vectors):
    db.upsert_image({**row, "vector": vec.astype(np.float32).tobytes(), "hash": None}, commit=False)
db.close()
"""


def rclip_index(venv: Path, data: list[Path], lib: str, tmp: Path) -> None:
    """rclip's index of the same images with the vectors of the mmsearch library."""
    import numpy as np

    from mmsearch.library import Library

    rows, vectors = [], []
    with Library.open(lib, readonly=True) as library:
        space = library.spaces["main"].id
        for item in library.catalog.iter_items():
            stat = os.stat(item.path)
            path = os.path.realpath(item.path)
            rows.append({"filepath": path, "modified_at": stat.st_mtime, "size": stat.st_size})
            vectors.append(library.catalog.item_vectors(item.id, space)[0])
    (tmp / "rows.json").write_text(json.dumps(rows))
    np.save(tmp / "vectors.npy", np.asarray(vectors, dtype=np.float32))
    for folder in data:
        (folder / "db.sqlite3").unlink(missing_ok=True)
        args = [str(folder / "db.sqlite3"), str(tmp / "rows.json"), str(tmp / "vectors.npy")]
        subprocess.run([str(venv / "bin" / "python"), "-c", FILL_DB, *args], check=True)


# ---- measuring ------------------------------------------------------------------------------


def run_once(case: Case) -> None:
    """Run ``case`` once; record its wall time and its CPU time (user + sys, from wait4)."""
    env = {**os.environ, **case.env}
    # As installed: bytecode is cached (the untimed first run writes what is missing).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(case.cmd, cwd=case.cwd, env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out.seek(0)
            raise RuntimeError(f"{case.name} failed ({proc.returncode}): {out.read()[-2000:]!r}")
    case.cpu.append(usage.ru_utime + usage.ru_stime)
    case.wall.append(wall)


def span(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def report(cases: list[Case], args: argparse.Namespace, rclip_version: str | None) -> str:
    cpu = subprocess.run(
        "lscpu | grep 'Model name' | sed 's/.*: *//'", shell=True, capture_output=True, text=True
    ).stdout.strip()
    by_name = {c.name: c for c in cases}
    lines = [
        "## Cold start",
        "",
        f"`.venv/bin/python benchmarks/bench_coldstart.py --runs {args.runs} --items {args.items}`"
        f" — {cpu}, {os.cpu_count()} cores (shared), Python {platform.python_version()}"
        + (f", rclip {rclip_version} on Python 3.12" if rclip_version else "")
        + f", {time.strftime('%Y-%m-%d')}. A fresh process per run (OS file cache warm), "
        f"a library of {args.items} generated photos, query {QUERY!r} (`-k 10`); "
        f"{args.runs} rounds, each running every case once in this order. "
        "CPU = user + sys of the child (`os.wait4`); median (min–max) over the rounds.",
        "",
        "| command | CPU s | wall s | CPU / rclip's, same round |",
        "| --- | --- | --- | --- |",
    ]
    rclip = by_name.get(PAIR[1])
    for case in cases:
        ratio = "—"
        if rclip is not None and case is not rclip:
            ratios = [a / b for a, b in zip(case.cpu, rclip.cpu, strict=True)]
            ratio = f"{span(ratios)}×"
        lines.append(f"| {case.name} | {span(case.cpu)} | {span(case.wall)} | {ratio} |")
    if rclip is not None:
        mine = by_name[PAIR[0]]
        ratios = [a / b for a, b in zip(mine.cpu, rclip.cpu, strict=True)]
        lines += [
            "",
            "mmsearch (ONNX fp32) / rclip CPU time, round by round: "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f" (median {statistics.median(ratios):.2f}).",
        ]
    return "\n".join(lines) + "\n"


# ---- main -----------------------------------------------------------------------------------


def build_cases(
    lib: str, demo_lib: str, hf_lib: str, models: dict[str, Path], media: Path,
    rclip: tuple[Path, Path, Path] | None,
) -> list[Case]:  # fmt: skip
    q = ["search", QUERY, "-k", "10"]
    image = ["search", "--image", str(media / "00001.jpg"), "-k", "10"]
    fp32, int8 = str(models["onnx"]), str(models["onnx-int8"])
    cases = [
        Case("mmsearch --help", [MMSEARCH, "--help"]),
        Case(PAIR[0], [MMSEARCH, *q, "-l", lib, "-m", fp32]),
    ]
    if rclip is not None:
        venv, data, aligned = rclip
        cmd = [str(venv / "bin" / "rclip"), "-n", QUERY]
        cases.append(Case(PAIR[1], cmd, cwd=str(media), env={"RCLIP_DATADIR": str(data)}))
        name = "rclip -n, given mmsearch's aligned weight file (for reference)"
        cases.append(Case(name, cmd, cwd=str(media), env={"RCLIP_DATADIR": str(aligned)}))
    cases += [
        Case("search, onnx int8 (ViT-B/32)", [MMSEARCH, *q, "-l", lib, "-m", int8]),
        Case("search --image, onnx fp32 (ViT-B/32)", [MMSEARCH, *image, "-l", lib, "-m", fp32]),
        Case("search, builtin:demo", [MMSEARCH, *q, "-l", demo_lib]),
        Case("search --image, builtin:demo", [MMSEARCH, *image, "-l", demo_lib]),
        Case("search, open_clip torch (ViT-B/32)", [MMSEARCH, *q, "-l", lib, "-m", str(models["torch"])]),
        Case("search, transformers torch (ViT-B/32)", [MMSEARCH, *q, "-l", hf_lib]),
    ]  # fmt: skip
    return cases


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--python312", help="Python >= 3.12 for rclip's venv (default: found)")
    ap.add_argument("--no-rclip", action="store_true", help="leave rclip out")
    args = ap.parse_args()
    cache = Path(__file__).parent / ".cache"
    media = (cache / f"jpegs-{args.items}").resolve()
    if not media.exists():
        make_jpegs(media, args.items)
    torch_model = vitb32_folder(cache)
    models = {
        "torch": Path(torch_model),
        "onnx": onnx_export(torch_model, cache / "vitb32-onnx", None),
        "onnx-int8": onnx_export(torch_model, cache / "vitb32-onnx-int8", "int8"),
        "hf": hf_clip_folder(cache),
    }
    python = None if args.no_rclip else find_python312(args.python312)
    if python is None and not args.no_rclip:
        print("no Python >= 3.12 found for rclip (--python312 PATH); leaving rclip out")
    with tempfile.TemporaryDirectory() as tmp:
        lib, demo_lib, hf_lib = (os.path.join(tmp, n) for n in ("lib", "demo", "hf"))
        index(media, lib, str(models["onnx"]))
        index(media, demo_lib, "builtin:demo")
        index(media, hf_lib, str(models["hf"]))
        rclip, version = None, None
        if python is not None:
            venv = rclip_venv(cache, python)
            data = rclip_data(cache, models["onnx"])
            aligned = rclip_data(cache, models["onnx"], aligned=True)
            rclip_index(venv, [data, aligned], lib, Path(tmp))
            rclip = (venv, data, aligned)
            version = subprocess.run(
                [str(venv / "bin" / "rclip"), "--version"], capture_output=True, text=True
            ).stdout.split()[-1]
        cases = build_cases(lib, demo_lib, hf_lib, models, media, rclip)
        for case in cases:  # one untimed run each: the OS file cache holds every file after it
            run_once(case)
            case.cpu.clear()
            case.wall.clear()
        for _ in range(args.runs):
            for case in cases:
                run_once(case)
    text = report(cases, args, version)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
