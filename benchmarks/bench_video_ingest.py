"""Video ingest speed: a 1080p30 H.264 file indexed at 1 frame/s with the ViT-B/32 architecture.

The video is generated once with ffmpeg (six scenes of moving test patterns:
testsrc2, Life, drifting gradients, a Mandelbrot zoom, a scrolling cellular
automaton, colour bars cycling hue; light temporal noise so the bitrate is
that of real footage; libx264 ``veryfast``, CRF 21, High profile, x264's
default GOP of 250 with B-frames; AAC stereo sound) and cached in
benchmarks/.cache/. The image–text model is transformers'
``CLIPModel(CLIPConfig())`` (the clip-vit-base-patch32 sizes) with seeded
random weights, saved with a CLIP tokenizer and loaded through mmsearch's own
``hf`` backend (speed does not depend on weight values).

Measured, in seconds of video per wall-clock second (× real time):

- decode: iterating :class:`mmsearch.media.video.VideoFrames` as ingest does
  (1 frame/s, shot detection on every decoded frame, RGB conversion of the
  sampled frames at 512 px), and the same with ``skip_nonref=False`` (every
  frame decoded): the baseline ratio;
- embed: the sampled frames through the encoder's own preprocessing and
  ``encode_pixels`` in batches of 16, as ingest does;
- whole: ``Library.add`` of a folder holding the file, into a fresh library
  (decode, embed, merge, thumbnails, commit, index save);
- diagnostics: raw PyAV decoding of every frame without sampling (threads
  and skip settings), to show where decode time goes, and the embed and
  whole rows with 1 and 2 torch threads; ``--onnx`` adds the embed and whole rows with the
  encoder exported to ONNX (fp32 and int8).

Rounds alternate the measurements; the table shows medians (min–max).

    .venv/bin/python benchmarks/bench_video_ingest.py [--seconds 60] [--rounds 3] [--onnx]
        [--threads N] [--out benchmarks/results/video-ingest.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from bench_encode import build_hf, loadavg, machine, run_and_report  # noqa: E402

CACHE = Path(__file__).parent / ".cache"
RESULTS = Path(__file__).parent / "results" / "video-ingest.md"
FRAME_BATCH = 16  # ingest.timed.FRAME_BATCH
TARGET = 5.0
CLIP_FOLDER = "hf-clip-vit-base-patch32-random"

# (lavfi source, scaling) of each scene: every one moves, and each cut changes the picture.
SCENES = [
    "testsrc2=s=1920x1080:r=30",
    "life=s=480x270:r=30:mold=10:ratio=0.3:life_color=#00ff80:death_color=#402000,"
    "scale=1920:1080:flags=neighbor",
    "gradients=s=1920x1080:r=30:speed=0.05:n=4",
    "mandelbrot=s=640x360:r=30,scale=1920:1080",
    "cellauto=s=480x270:r=30:rule=110,scale=1920:1080:flags=neighbor",
    "smptehdbars=s=1920x1080:r=30,hue=h=t*36",
]
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "21", "-profile:v", "high"]


# ------------------------------------------------------------------------------ inputs


def make_video(path: Path, seconds: float) -> None:
    """A 1080p30 H.264 + AAC MP4 of ``seconds``, in len(SCENES) scenes separated by hard cuts."""
    scene = seconds / len(SCENES)
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    for src in SCENES:
        cmd += ["-f", "lavfi", "-i", f"{src},trim=duration={scene:.3f},setpts=PTS-STARTPTS"]
    cmd += ["-f", "lavfi", "-i", f"sine=f=330:beep_factor=4:d={seconds:.3f}:r=48000"]
    inputs = "".join(f"[{i}]" for i in range(len(SCENES)))
    graph = (
        f"{inputs}concat=n={len(SCENES)}:v=1:a=0,format=yuv420p,noise=alls=4:allf=t[v];"
        f"[{len(SCENES)}]aformat=channel_layouts=stereo[a]"
    )
    tmp = path.with_suffix(".part.mp4")
    cmd += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]", *X264]
    cmd += ["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(tmp)]
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, check=True)
    tmp.rename(path)


def video_facts(path: Path) -> dict[str, Any]:
    """Container and stream facts for the report, from PyAV."""
    import av

    with av.open(str(path)) as container:
        v = container.streams.video[0]
        ctx = v.codec_context
        base, rate = v.time_base, v.average_rate
        duration = float(v.duration * base) if v.duration and base is not None else None
        return {
            "duration": duration,
            "size": f"{ctx.width}x{ctx.height}",
            "fps": float(rate) if rate is not None else None,
            "codec": f"{ctx.name} ({ctx.profile})",
            "frames": v.frames,
            "mbps": path.stat().st_size * 8 / (duration or 1) / 1e6,
            "audio": bool(container.streams.audio),
        }


def clip_encoder(batch: int) -> Any:
    """The ViT-B/32 CLIPModel with seeded random weights through the hf backend (cached folder)."""
    import mmsearch

    folder = CACHE / CLIP_FOLDER
    needed = ("config.json", "model.safetensors", "preprocessor_config.json", "vocab.json")
    if all((folder / name).exists() for name in needed):
        return mmsearch.load_encoder(str(folder), device="cpu", batch_size=batch)
    shutil.rmtree(folder, ignore_errors=True)
    return build_hf(batch, CACHE)


# ------------------------------------------------------------------------------ measurements


@dataclass
class Clock:
    """Wall-clock and CPU seconds (all threads of this process) of a ``with`` block."""

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> Clock:
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._w
        self.cpu = time.process_time() - self._c


Job = Callable[[], Clock]


def decode_frames(path: Path, skip_nonref: bool) -> tuple[Clock, list[Any], int, int]:
    """Time to iterate VideoFrames as ingest does; the sampled frames; decoded; shot starts."""
    from mmsearch.ingest.timed import TimedOptions
    from mmsearch.media.video import VideoFrames

    opt = TimedOptions()
    with Clock() as clock:
        frames = VideoFrames(
            path,
            fps=opt.fps,
            max_frames=opt.max_frames,
            shot_threshold=opt.shot_threshold,
            max_side=opt.max_side,
            skip_nonref=skip_nonref,
        )
        sampled = list(frames)
    return clock, sampled, frames.frames_decoded, sum(f.shot_start for f in sampled)


def raw_decode(
    path: Path, *, threads: bool, skip_frame: Literal["DEFAULT", "NONREF"], options: dict[str, str]
) -> Clock:
    """Time to decode every packet of the video track with PyAV, nothing else done."""
    import av

    with Clock() as clock, av.open(str(path)) as container:
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = skip_frame
        if options:
            stream.codec_context.options = dict(options)
        for packet in container.demux(stream):
            stream.decode(packet)
    return clock


def embed(encoder: Any, frames: list[Any]) -> Clock:
    """Time to preprocess and embed the sampled frames in ingest's batches."""
    pre = encoder.image_preprocessor()
    with Clock() as clock:
        for i in range(0, len(frames), FRAME_BATCH):
            batch = frames[i : i + FRAME_BATCH]
            pixels = np.stack([np.asarray(pre(f.image), dtype=np.float32) for f in batch])
            encoder.encode_pixels(pixels)
    return clock


def stored_segments(lib: Any, report: Any, what: str) -> dict[str, int]:
    """Segments by kind in ``lib`` after an ingest of one ``what`` (``report`` must show it added)."""
    if report.failed or report.added != 1:
        raise RuntimeError(f"ingest did not add the {what}: {report.to_dict()}")
    rows = lib.catalog.conn.execute("SELECT kind, COUNT(*) FROM segments GROUP BY kind")
    return dict(rows.fetchall())


def whole(encoder: Any, folder: Path) -> tuple[Clock, dict[str, Any]]:
    """Time of ``Library.add([folder])`` into a fresh library, and what it stored."""
    from mmsearch.library import Library

    with tempfile.TemporaryDirectory(prefix="mmsearch-bench-lib-") as tmp:
        lib = Library.open(Path(tmp) / "lib", encoder=encoder)
        try:
            with Clock() as clock:
                report = lib.add([folder])
            kinds = stored_segments(lib, report, "video")
            item = next(iter(lib.catalog.iter_items()))
        finally:
            lib.close()
    return clock, {"segments": kinds, "meta": item.meta}


def onnx_encoders(source: Any, batch: int) -> dict[str, Any]:
    """The source model exported to ONNX fp32 and int8 (cached next to the model)."""
    import mmsearch
    from mmsearch.encoders.onnx_export import export_onnx

    out = {}
    for label, quant in (("ONNX fp32", None), ("ONNX int8", "int8")):
        folder = CACHE / f"{CLIP_FOLDER}-onnx-{quant or 'fp32'}"
        if not folder.is_dir():
            export_onnx(source, folder, quantize=quant)
        out[label] = mmsearch.load_encoder(str(folder), batch_size=batch)
    return out


def timed_rounds(
    jobs: dict[str, Job], rounds: int, log: Callable[[str], None]
) -> dict[str, list[Clock]]:
    """Each job once per round, the order rotated every round; its clocks."""
    names = list(jobs)
    times: dict[str, list[Clock]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            clock = jobs[name]()
            times[name].append(clock)
            log(f"round {r + 1}: {name}: {clock.wall:.2f} s (CPU {clock.cpu / clock.wall:.2f})")
    return times


def with_threads(threads: int, job: Job) -> Clock:
    """Run ``job`` with ``threads`` torch threads, then restore the number."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return job()
    finally:
        torch.set_num_threads(before)


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    path = CACHE / f"video-1080p30-{args.seconds:g}s.mp4"
    if not path.exists():
        log(f"generating {path} ...")
        start = time.perf_counter()
        make_video(path, args.seconds)
        log(f"generated in {time.perf_counter() - start:.0f} s")
    media = CACHE / f"video-1080p30-{args.seconds:g}s"  # a folder holding only the video
    media.mkdir(exist_ok=True)
    linked = media / path.name
    if not linked.exists():
        linked.symlink_to(path.resolve())
    facts = video_facts(path)
    res: dict[str, Any] = {"facts": facts, "load_before": loadavg()}
    encoder = clip_encoder(FRAME_BATCH)
    _, frames, decoded, cuts = decode_frames(path, True)  # warm-up; the frames to embed
    _, _, decoded_all, _ = decode_frames(path, False)
    res.update(sampled=len(frames), decoded=decoded, decoded_all=decoded_all, cuts=cuts)
    embed(encoder, frames[:FRAME_BATCH])  # warm-up
    stored: dict[str, Any] = {}

    def whole_job(enc: Any, key: str) -> Job:
        def job() -> Clock:
            clock, stored[key] = whole(enc, media)
            return clock

        return job

    jobs: dict[str, Job] = {
        "decode": lambda: decode_frames(path, True)[0],
        "decode, every frame (skip_nonref=False)": lambda: decode_frames(path, False)[0],
        "embed": lambda: embed(encoder, frames),
        "whole": whole_job(encoder, "PyTorch"),
    }
    res["times"] = timed_rounds(jobs, args.rounds, log)
    diag: dict[str, Job] = {
        "every frame, threads AUTO": lambda: raw_decode(
            path, threads=True, skip_frame="DEFAULT", options={}
        ),
        "every frame, one thread": lambda: raw_decode(
            path, threads=False, skip_frame="DEFAULT", options={}
        ),
        "non-reference frames skipped, threads AUTO": lambda: raw_decode(
            path, threads=True, skip_frame="NONREF", options={}
        ),
        "non-reference skipped + skip_loop_filter=all": lambda: raw_decode(
            path, threads=True, skip_frame="NONREF", options={"skip_loop_filter": "all"}
        ),
    }
    res["diag"] = timed_rounds(diag, args.diag_rounds, log)
    threads: dict[str, Job] = {}
    for n in (1, 2):
        label = f"{n} torch thread{'s' * (n > 1)}"
        threads[f"embed, {label}"] = partial(with_threads, n, partial(embed, encoder, frames))
        threads[f"whole, {label}"] = partial(with_threads, n, whole_job(encoder, label))
    res["threads"] = timed_rounds(threads, args.rounds, log)
    if args.onnx:
        onnx = onnx_encoders(encoder, FRAME_BATCH)
        onnx_jobs: dict[str, Job] = {}
        for label, enc in onnx.items():
            embed(enc, frames[:FRAME_BATCH])  # warm-up (session start)
            onnx_jobs[f"embed, {label}"] = partial(embed, enc, frames)
            onnx_jobs[f"whole, {label}"] = whole_job(enc, label)
        res["onnx"] = timed_rounds(onnx_jobs, args.rounds, log)
    res["stored"] = stored
    res["load_after"] = loadavg()
    res["torch"] = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    return res


# ------------------------------------------------------------------------------ report


def row(label: str, duration: float, clocks: list[Clock], extra: str = "") -> str:
    """A table row: × real time (median, min–max), wall s, CPU cores used, media s per CPU s."""
    rates = [duration / c.wall for c in clocks]
    wall = statistics.median(c.wall for c in clocks)
    cores = statistics.median(c.cpu / c.wall for c in clocks)
    per_cpu = statistics.median(duration / c.cpu for c in clocks)
    return (
        f"| {label} | {statistics.median(rates):.2f}× | {min(rates):.2f}–{max(rates):.2f} | "
        f"{wall:.1f} | {cores:.2f} | {per_cpu:.2f} |{extra}"
    )


def median_wall(clocks: list[Clock]) -> float:
    return statistics.median(c.wall for c in clocks)


HEADER = [
    "| stage | × real time (median) | min–max | wall s (median) | CPU cores used "
    "| media s per CPU s |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
]


def report(res: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    m, f = machine(), res["facts"]
    duration = f["duration"]
    times = res["times"]
    full = "decode, every frame (skip_nonref=False)"
    segs = res["stored"]["PyTorch"]["segments"]
    lines = [
        "# Video ingest: 1080p30 H.264 at 1 frame/s, ViT-B/32 (CPU)",
        "",
        f"- Date: {dt.date.today().isoformat()}",
        f"- Machine: {m['model']}, {m.get('cores', '?')} cores ({m['cpus']} CPUs), Linux; "
        f"{res['torch']}, PyAV {_av_version()}, Python {platform.python_version()}",
        f"- Command: `{command}`",
        f"- Input: {duration:.0f} s, {f['size']}, {f['fps']:g} fps, {f['codec']}, "
        f"{f['frames']} frames, {f['mbps']:.1f} Mbit/s, with AAC sound (not indexed: no audio "
        "model); six moving scenes with hard cuts, generated by ffmpeg (libx264 veryfast CRF 21, "
        "GOP 250, B-frames).",
        "- Model: transformers `CLIPModel(CLIPConfig())` = clip-vit-base-patch32 sizes, seeded "
        "random weights, loaded by mmsearch's `hf` backend, fp32, batches of 16.",
        f"- Settings: ingest defaults (`TimedOptions`): 1 frame/s, shot threshold 0.35, frames "
        f"scaled to 512 px, merge at cosine ≥ 0.95. Frames sampled: **{res['sampled']}** "
        f"({res['cuts']} marked as shot starts); frames decoded: {res['decoded']} of "
        f"{res['decoded_all']} (non-reference frames skipped). Segments stored: "
        f"**{segs.get('frame', 0)}** frame segments after merging, "
        f"{segs.get('video', 0)} whole-video vector.",
        f"- {args.rounds} timed rounds after a warm-up, order rotated each round; medians "
        "(min–max). × real time = seconds of video / wall-clock seconds. CPU cores used = CPU "
        "seconds of this process (all threads) / wall seconds: 2.00 would be both cores, less "
        "means other jobs held them. Media s per CPU s = seconds of video per CPU second: "
        "about what one core of its own would do (conservative: contention also makes each "
        "CPU second do less).",
        f"- The 2 CPUs are shared with other jobs: load average (1/5/15 min) before "
        f"{res['load_before']}, after {res['load_after']}.",
        "",
        HEADER[0] + " speed vs decoding every frame |",
        HEADER[1] + " ---: |",
    ]
    base = median_wall(times[full])
    labels = {
        "decode": "decode (`VideoFrames`, as ingest: non-reference frames skipped)",
        full: "decode, every frame (`skip_nonref=False`): baseline",
        "embed": f"embed {res['sampled']} frames (preprocess + `encode_pixels`)",
        "whole": "**whole: `Library.add`** (decode, embed, merge, thumbnails, commit)",
    }
    for key, label in labels.items():
        ratio = f" {base / median_wall(times[key]):.2f}× |" if key in ("decode", full) else " |"
        lines.append(row(label, duration, times[key], ratio))
    parts = median_wall(times["decode"]) + median_wall(times["embed"])
    lines += [
        "",
        f"Decode + embed measured apart: {parts:.1f} s; the whole `Library.add`: "
        f"{median_wall(times['whole']):.1f} s; the difference is what merging, thumbnails, the "
        "catalog commit and the index save cost, plus run-to-run noise.",
    ]
    if "onnx" in res:
        lines += [
            "",
            "The same with the model exported by `mmsearch.encoders.onnx_export` (fp32, and "
            "int8 dynamic quantisation) and loaded by the `onnx` backend:",
            "",
            *HEADER,
        ]
        lines += [row(key, duration, clocks) for key, clocks in res["onnx"].items()]
    lines += [
        "",
        "Decode diagnostics: raw PyAV decoding of every packet of the video track, nothing "
        f"sampled or converted ({args.diag_rounds} round(s)):",
        "",
        *HEADER,
    ]
    lines += [row(key, duration, clocks) for key, clocks in res["diag"].items()]
    lines += [
        "",
        f"PyTorch with 1 and 2 torch threads ({args.rounds} rounds; on a shared CPU the second "
        "thread's waits can cost more than it brings):",
        "",
        *HEADER,
    ]
    lines += [row(key, duration, clocks) for key, clocks in res["threads"].items()]
    return "\n".join(lines) + "\n"


def _av_version() -> str:
    import av

    return str(av.__version__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the video")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--diag-rounds", type=int, default=1)
    parser.add_argument("--onnx", action="store_true", help="also embed with ONNX fp32/int8")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (default: torch's own choice)"
    )
    parser.add_argument("--out", default=str(RESULTS))
    return run_and_report(parser, argv, "bench_video_ingest.py", run, report)


if __name__ == "__main__":
    raise SystemExit(main())
