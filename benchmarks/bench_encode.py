"""Encoding throughput on CPU: PyTorch eager vs our ONNX export (fp32 and int8).

Two ViT-B/32 CLIP models with seeded random weights (nothing is downloaded):
open_clip's ``ViT-B-32`` through mmsearch's ``openclip`` backend, and
transformers' ``CLIPModel(CLIPConfig())`` (the clip-vit-base-patch32 sizes)
through the ``hf`` backend; each is exported with
:func:`mmsearch.encoders.onnx_export.export_onnx`. All backends
are measured in the same run, on the same inputs, alternating the order in
every round (the CPU may be shared), after warm-up; the table shows medians.

Measured: images/s of the model on preprocessed batches (``encode_pixels``),
texts/s (``encode_text``, tokenizing included), cosine of each ONNX output
with PyTorch's, the cold start of a text query in a fresh process (import +
load + tokenizer + session + one text), and preprocessing (decode-free PIL
resize + normalise) images/s for both preprocessors.

    python benchmarks/bench_encode.py [--families openclip,hf] [--batch 16] [--rounds 5]
        [--out benchmarks/results/encode.md]

This is not a test; it takes several minutes (each model is exported twice).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

NOTES_MARKER = "## Reading the numbers"

CAPTIONS = [
    "a photo of a dog running on the beach",
    "a red car parked in a city street at night",
    "two cats sleeping on a sofa",
    "a bowl of fresh fruit on a wooden table",
    "一只狗在海滩上奔跑",
    "mountains covered in snow under a blue sky",
    "a person riding a bicycle through a park",
    "an old building with tall windows and a clock tower",
]


def machine() -> dict[str, str]:
    """CPU model and core counts from lscpu (falls back to platform)."""
    info = {"model": platform.processor() or platform.machine(), "cpus": str(os.cpu_count())}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return info
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    info["model"] = fields.get("Model name", info["model"])
    info["cpus"] = fields.get("CPU(s)", info["cpus"])
    info["cores"] = str(
        int(fields.get("Core(s) per socket", "0") or 0) * int(fields.get("Socket(s)", "1") or 1)
    )
    info["threads_per_core"] = fields.get("Thread(s) per core", "?")
    return info


def synthetic_images(n: int, seed: int = 0) -> list[Any]:
    """Smooth gradients with noise, 640x480 — photo-sized inputs for the preprocessors."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640]
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        arr = np.stack([x * a * 255 / 640, y * b * 255 / 480, (x + y) * c * 127 / 1120], -1)
        arr = arr + rng.normal(0, 12, arr.shape)
        out.append(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))
    return out


def build_openclip(batch: int, work: Path) -> Any:
    """open_clip ViT-B-32 with seeded random weights, as mmsearch's openclip encoder (CPU fp32)."""
    import open_clip
    import torch

    from mmsearch.encoders.openclip import OpenClipEncoder

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    return OpenClipEncoder(
        model,
        tokenizer,
        spec="openclip:ViT-B-32/random-init",
        model_id="ViT-B-32/random-init",
        device="cpu",
        dtype=torch.float32,
        batch_size=batch,
    )


def build_hf(batch: int, work: Path) -> Any:
    """transformers CLIPModel with CLIPConfig() defaults (the clip-vit-base-patch32 sizes), random
    weights, saved with a CLIP tokenizer built from open_clip's BPE vocabulary (the same vocabulary
    OpenAI's CLIP uses) and loaded back through mmsearch's hf backend (CPU fp32)."""
    from bench_coldstart import hf_clip_folder

    import mmsearch

    return mmsearch.load_encoder(str(hf_clip_folder(work)), device="cpu", batch_size=batch)


FAMILIES: dict[str, tuple[str, Callable[[int, Path], Any]]] = {
    "openclip": ("open_clip `ViT-B-32` (random init), openclip backend", build_openclip),
    "hf": (
        "transformers `CLIPModel(CLIPConfig())` = ViT-B/32 sizes (random init), hf backend",
        build_hf,
    ),
}


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def cold_start(folder: Path, runs: int) -> tuple[float, bool]:
    """Median wall time of a fresh process that loads the export and encodes one text."""
    code = (
        "import sys, mmsearch; "
        f"enc = mmsearch.load_encoder({str(folder)!r}); enc.encode_text(['a dog on the beach']); "
        "print('torch' in sys.modules)"
    )
    times, torch_loaded = [], False
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        times.append(time.perf_counter() - start)
        torch_loaded = torch_loaded or proc.stdout.strip() == "True"
    return statistics.median(times), torch_loaded


def gemm_gflops(rounds: int) -> dict[str, float]:
    """GFLOP/s of one fp32 MatMul shaped like a ViT-B MLP layer (16x50 tokens): torch vs onnxruntime.

    Explains most of the gap between the backends: torch's CPU GEMM here is
    MKL's, onnxruntime's is its own MLAS.
    """
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper

    from mmsearch.encoders.onnx import physical_cores

    rng = np.random.default_rng(0)
    a = rng.random((800, 768), dtype=np.float32)
    w = rng.random((768, 3072), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "w"], ["y"])],
        "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [800, 768])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [800, 3072])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = physical_cores()
    session = ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    ta, tw = torch.from_numpy(a), torch.from_numpy(w)
    flop = 2 * 800 * 768 * 3072 * 10
    times: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
    for _ in range(rounds + 1):
        times["torch"].append(timed(lambda: [ta @ tw for _ in range(10)]))
        times["onnxruntime"].append(timed(lambda: [session.run(None, {"a": a}) for _ in range(10)]))
    return {k: flop / statistics.median(v[1:]) / 1e9 for k, v in times.items()}


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that ran ``benchmarks/<script>`` with ``argv``, for a report's header."""
    args = argv if argv is not None else sys.argv[1:]
    return f"python benchmarks/{script} {' '.join(args)}".strip()


def elapsed_log() -> Callable[[str], None]:
    """A progress log on stderr, each line stamped with the seconds since this call."""
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {msg}", file=sys.stderr, flush=True)

    return log


def write_results(out: Path, text: str) -> str:
    """Write the report ``text`` to ``out`` and return what was written: the hand-written
    reading of earlier runs (from ``NOTES_MARKER`` on) stays below the fresh tables."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_file() and NOTES_MARKER in out.read_text():
        text += "\n" + NOTES_MARKER + out.read_text().split(NOTES_MARKER, 1)[1]
    out.write_text(text)
    return text


def run_and_report(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    script: str,
    run: Callable[[argparse.Namespace, Callable[[str], None]], dict[str, Any]],
    report: Callable[[dict[str, Any], argparse.Namespace, str], str],
) -> int:
    """A benchmark's ``main``: parse ``argv``, ``run`` with a progress log on stderr, then write
    the ``report`` to ``--out`` (see :func:`write_results`) and print it."""
    args = parser.parse_args(argv)
    command = command_line(script, argv)
    log = elapsed_log()
    res = run(args, log)
    print(write_results(Path(args.out), report(res, args, command)))
    log("done")
    return 0


def environment() -> dict[str, Any]:
    import onnxruntime
    import torch

    from mmsearch.encoders.onnx import physical_cores

    return {
        "torch_threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "ort_threads": physical_cores(),
    }


def run(args: argparse.Namespace, family: str, work: Path) -> dict[str, Any]:
    """Build one family's source model, export it twice and measure all three backends."""
    import mmsearch
    from mmsearch.encoders.onnx_export import export_onnx

    results: dict[str, Any] = {"load_before": loadavg(), "family": family}
    source = FAMILIES[family][1](args.batch, work)
    encoders: dict[str, Any] = {"PyTorch eager fp32": source}
    results["export_s"], results["folders"] = {}, {}
    for label, quant in (("ONNX fp32", None), ("ONNX int8 (dynamic)", "int8")):
        start = time.perf_counter()
        folder = export_onnx(source, work / f"{family}-{quant or 'fp32'}", quantize=quant)
        results["export_s"][label] = time.perf_counter() - start
        encoders[label] = mmsearch.load_encoder(str(folder), batch_size=args.batch)
        results["folders"][label] = folder

    images = synthetic_images(args.batch)
    pixels = np.stack([encoders["ONNX fp32"].image_preprocessor()(im) for im in images])
    texts = (CAPTIONS * (args.batch // len(CAPTIONS) + 1))[: args.batch]

    outputs = {}
    for label, enc in encoders.items():  # warm-up (also first session creation)
        outputs[label] = (enc.encode_pixels(pixels), enc.encode_text(texts))
        enc.encode_pixels(pixels)
        enc.encode_text(texts)
    ref_img, ref_txt = outputs["PyTorch eager fp32"]
    results["cosine"] = {
        label: (cosine_min(ref_img, img), cosine_min(ref_txt, txt))
        for label, (img, txt) in outputs.items()
    }

    labels = list(encoders)
    img_times: dict[str, list[float]] = {k: [] for k in labels}
    txt_times: dict[str, list[float]] = {k: [] for k in labels}
    for r in range(args.rounds):
        order = labels[r % len(labels) :] + labels[: r % len(labels)]
        for label in order:
            enc = encoders[label]
            img_times[label].append(timed(partial(enc.encode_pixels, pixels)))
            txt_times[label].append(timed(partial(enc.encode_text, texts)))
    results["images_per_s"] = {k: [args.batch / t for t in v] for k, v in img_times.items()}
    results["texts_per_s"] = {k: [args.batch / t for t in v] for k, v in txt_times.items()}

    torch_pre = source.image_preprocessor()
    np_pre = encoders["ONNX fp32"].image_preprocessor()
    torch_pre(images[0]), np_pre(images[0])  # warm-up: open_clip builds its transform lazily
    torch_label = f"{family} backend's own ({type(torch_pre).__name__})"
    pre_times: dict[str, list[float]] = {torch_label: [], "preprocess_np (PIL+numpy)": []}
    for _ in range(args.rounds):
        pre_times[torch_label].append(timed(lambda: [torch_pre(im) for im in images]))
        pre_times["preprocess_np (PIL+numpy)"].append(timed(lambda: [np_pre(im) for im in images]))
    results["preprocess_per_s"] = {k: [len(images) / t for t in v] for k, v in pre_times.items()}

    results["gemm_gflops"] = gemm_gflops(args.rounds)
    results["cold_start"] = {
        label: cold_start(results["folders"][label], args.cold_runs)
        for label in ("ONNX fp32", "ONNX int8 (dynamic)")
    }
    results["load_after"] = loadavg()
    return results


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}"


def report(
    env: dict[str, Any],
    runs: list[dict[str, Any]],
    gemm: dict[str, float],
    args: argparse.Namespace,
    command: str,
) -> str:
    m = machine()
    lines = [
        "# Encoding throughput on CPU: PyTorch eager vs ONNX Runtime (fp32, int8)",
        "",
        f"- Date: {dt.date.today().isoformat()}",
        f"- Machine: {m['model']}, {m.get('cores', '?')} cores "
        f"({m['cpus']} CPUs, {m.get('threads_per_core', '?')} thread(s) per core), Linux",
        f"- Software: torch {env['versions']['torch']} ({env['torch_threads']} threads), "
        f"onnxruntime {env['versions']['onnxruntime']} ({env['ort_threads']} intra-op threads, "
        f"graph optimisation ALL), Python {platform.python_version()}",
        "- Models: ViT-B/32 CLIP architectures with seeded random weights (no download); ONNX "
        "graphs exported by `mmsearch.encoders.onnx_export` (TorchScript exporter, opset 17); "
        "int8 = onnxruntime dynamic quantisation of MatMul/Gemm weights, per channel.",
        f"- Batch {args.batch}; {args.rounds} timed rounds after warm-up, backends alternated in "
        "every round; medians, with min–max. Images/s counts the model only (preprocessed "
        "224x224 batches); texts/s includes tokenizing.",
        "- The 2 CPUs were shared with other jobs during the run (load averages below), so "
        "absolute numbers are noisy; ratios come from interleaved rounds.",
        f"- Command: `{command}`",
        f"- Context: one fp32 MatMul (800x768 @ 768x3072, a ViT-B MLP layer for 16 images) runs "
        f"at {gemm['torch']:.0f} GFLOP/s in torch (MKL) and {gemm['onnxruntime']:.0f} GFLOP/s in "
        "onnxruntime (MLAS) on this CPU.",
    ]
    for res in runs:
        lines += ["", *family_section(res)]
    return "\n".join(lines) + "\n"


def family_section(res: dict[str, Any]) -> list[str]:
    img, txt = res["images_per_s"], res["texts_per_s"]
    base_img = statistics.median(img["PyTorch eager fp32"])
    base_txt = statistics.median(txt["PyTorch eager fp32"])
    lines = [
        f"## {FAMILIES[res['family']][0]}",
        "",
        f"Load average (1/5/15 min) before: {res['load_before']}, after: {res['load_after']}.",
        "",
        "| backend | images/s (median) | min–max | vs PyTorch | texts/s (median) | min–max "
        "| vs PyTorch | cosine vs PyTorch (image / text, min over batch) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label in img:
        mi, mt = statistics.median(img[label]), statistics.median(txt[label])
        ci, ct = res["cosine"][label]
        lines.append(
            f"| {label} | {mi:.2f} | {spread(img[label])} | {mi / base_img:.2f}x | {mt:.2f} | "
            f"{spread(txt[label])} | {mt / base_txt:.2f}x | {ci:.6f} / {ct:.6f} |"
        )
    lines += [
        "",
        "| preprocessing of 640x480 RGB images | images/s (median) | min–max |",
        "| --- | ---: | ---: |",
    ]
    for label, values in res["preprocess_per_s"].items():
        lines.append(f"| {label} | {statistics.median(values):.1f} | {spread(values)} |")
    lines += [
        "",
        "| cold start: fresh process, import + load + tokenizer + session + one text "
        "| seconds (median) | torch imported |",
        "| --- | ---: | --- |",
    ]
    for label, (seconds, torch_loaded) in res["cold_start"].items():
        lines.append(f"| {label} | {seconds:.2f} | {'yes' if torch_loaded else 'no'} |")
    lines += [
        "",
        "Export time: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in res["export_s"].items())
        + " (including the parity check against PyTorch).",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--families", default="openclip,hf", help=f"of {', '.join(FAMILIES)}")
    parser.add_argument(
        "--workdir", help="where to write models and exports (default: a temp folder)"
    )
    parser.add_argument("--out", default="benchmarks/results/encode.md")
    args = parser.parse_args(argv)
    command = command_line("bench_encode.py", argv)
    env = environment()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mmsearch-bench-"))
    runs = []
    try:
        for family in args.families.split(","):
            runs.append(run(args, family.strip(), work))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    text = report(env, runs, gemm_gflops(args.rounds), args, command)
    print(write_results(Path(args.out), text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
