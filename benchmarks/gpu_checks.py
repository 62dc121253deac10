"""Every GPU check in one run (the GPU is lent for minutes): CUDA paths and their speed.

    python benchmarks/gpu_checks.py --out gpu.md [--video-seconds 60] [--audio-minutes 10]

1. Encoder: the ViT-B/32 CLIPModel (random weights, mmsearch's hf backend) on CUDA fp16
   against the CPU fp32 path: cosine of the vectors, images/s and texts/s at batch 256.
2. Video ingest: a generated 1080p30 H.264 file at 1 frame/s through ``Library.add`` with
   the model on the GPU: decode alone, embed alone, the whole, in × real time.
3. Audio ingest: CLAP (htsat-unfused sizes) and Whisper-base (greedy, capped tokens), both
   random weights, on the GPU: × real time for windows, transcription and ``Library.add``.
The CPU figures in the same tables are this machine's own CPU (the baseline measured in
the same run). Prints and writes one Markdown section.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from bench_audio_ingest import build_clap, build_whisper  # noqa: E402
from bench_encode import build_hf  # noqa: E402

LINES: list[str] = []
DEVICE = "cuda"


def say(line: str = "") -> None:
    print(line, flush=True)
    LINES.append(line)


def timed(fn: Any, *args: Any, repeat: int = 1, **kw: Any) -> tuple[float, Any]:
    import torch

    best, out = math.inf, None
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


# ------------------------------------------------------------------------------ media
def make_video(path: Path, seconds: float) -> Path:
    """1080p30 H.264 with moving noise texture and six hard cuts (PyAV's libx264)."""
    import av

    rng = np.random.default_rng(0)
    w, h, fps = 1920, 1080, 30
    scenes = 6
    bases = [rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8) for _ in range(scenes)]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.options = {"preset": "veryfast", "crf": "21"}
        n = int(seconds * fps)
        for i in range(n):
            base = bases[min(scenes - 1, i * scenes // n)]
            img = np.repeat(np.repeat(np.roll(base, i, axis=1), 8, 0), 8, 1)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


def make_recording(path: Path, seconds: float, rate: int = 44100) -> Path:
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * (220 + 110 * np.sin(t / 7)) * t)
    x += 0.1 * rng.standard_normal(len(t)) * (np.sin(t / 3) > 0)
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(rate)
        wf.writeframes(pcm.tobytes())
    return path


# ------------------------------------------------------------------------------ checks
def encoder_check(folder: Path) -> Any:
    import mmsearch

    gpu = mmsearch.load_encoder(str(folder), device=DEVICE, batch_size=256)
    cpu = mmsearch.load_encoder(str(folder), device="cpu", batch_size=64)
    rng = np.random.default_rng(0)
    pix = rng.standard_normal((256, 3, 224, 224)).astype(np.float32)
    texts = [f"a photo of a thing number {i} on a table" for i in range(256)]
    a, b = gpu.encode_pixels(pix[:16]), cpu.encode_pixels(pix[:16])
    img_cos = float(np.min(np.sum(a * b, axis=1)))
    a, b = gpu.encode_text(texts[:16]), cpu.encode_text(texts[:16])
    txt_cos = float(np.min(np.sum(a * b, axis=1)))
    timed(gpu.encode_pixels, pix)  # warm-up
    tg, _ = timed(gpu.encode_pixels, pix, repeat=5)
    tc, _ = timed(cpu.encode_pixels, pix[:64], repeat=2)
    ttg, _ = timed(gpu.encode_text, texts, repeat=5)
    ttc, _ = timed(cpu.encode_text, texts[:64], repeat=2)
    say("### Encoder: ViT-B/32 (random weights), hf backend")
    say()
    say("| path | images/s | texts/s | min cosine vs CPU fp32 (images / texts) |")
    say("| --- | ---: | ---: | --- |")
    say(
        f"| CUDA fp16, batch 256 | {256 / tg:,.0f} | {256 / ttg:,.0f} | {img_cos:.5f} / {txt_cos:.5f} |"
    )
    say(f"| CPU fp32 ({os.cpu_count()} cores), batch 64 | {64 / tc:,.0f} | {64 / ttc:,.0f} | 1 |")
    say(
        f"\nGPU/CPU speed ratio: images {(256 / tg) / (64 / tc):.1f}×, texts {(256 / ttg) / (64 / ttc):.1f}×.\n"
    )
    return gpu


def video_check(encoder: Any, work: Path, seconds: float) -> None:
    from mmsearch.library import Library
    from mmsearch.media.video import VideoFrames

    folder = work / "video"
    folder.mkdir()
    t, _ = timed(make_video, folder / "v.mp4", seconds)
    say(f"### Video ingest: {seconds:.0f} s of 1080p30 H.264 at 1 frame/s, model on the GPU")
    say(f"\n(generating the file took {t:.1f} s)\n")
    frames: list[Any] = []

    def decode() -> None:
        frames.clear()
        frames.extend(VideoFrames(str(folder / "v.mp4")))

    td, _ = timed(decode, repeat=2)
    pre = encoder.image_preprocessor()

    def embed() -> None:
        for i in range(0, len(frames), 16):
            px = np.stack([np.asarray(pre(f.image), np.float32) for f in frames[i : i + 16]])
            encoder.encode_pixels(px)

    te, _ = timed(embed, repeat=2)
    rows = [("decode (VideoFrames)", td), (f"embed {len(frames)} frames (CUDA fp16)", te)]
    for r in range(2):
        lib = Library.open(work / f"lib-v{r}", encoder=encoder)
        tw, rep = timed(lib.add, [folder])
        lib.close()
        assert rep.added == 1, rep.to_dict()
    rows.append(("whole `Library.add` (decode ∥ embed, merge, thumbnails, commit)", tw))
    say("| stage | wall s | × real time |")
    say("| --- | ---: | ---: |")
    for label, sec in rows:
        say(f"| {label} | {sec:.2f} | {seconds / sec:.1f}× |")
    say()


def audio_check(image_encoder: Any, work: Path, minutes: float) -> None:
    from mmsearch.encoders.av_registry import load_audio_encoder, load_recognizer
    from mmsearch.library import Library
    from mmsearch.media.audio import AudioChunks, windows

    seconds = minutes * 60
    build_clap(work / "clap")
    build_whisper(work / "whisper")
    clap = load_audio_encoder(str(work / "clap"), device=DEVICE)
    asr = load_recognizer(str(work / "whisper"), device=DEVICE, max_new_tokens=64)
    folder = work / "audio"
    folder.mkdir()
    make_recording(folder / "rec.wav", seconds)
    chunks = list(AudioChunks(str(folder / "rec.wav"), sample_rate=clap.sample_rate))
    wins = list(windows(chunks, sample_rate=clap.sample_rate, window_s=10, hop_s=5))

    def clap_all() -> None:
        for i in range(0, len(wins), 8):
            clap.encode_audio([w[2] for w in wins[i : i + 8]])

    clap_all()  # warm-up
    tc, _ = timed(clap_all)
    chunks16 = list(AudioChunks(str(folder / "rec.wav"), sample_rate=16000))
    tw, _ = timed(lambda: [asr.transcribe(s) for _, s in chunks16])
    lib = Library.open(work / "lib-a", encoder=image_encoder, audio_encoder=clap, recognizer=asr)
    tl, rep = timed(lib.add, [folder])
    lib.close()
    assert rep.added == 1, rep.to_dict()
    say(f"### Audio ingest: {minutes:.0f} min recording, models on the GPU (random weights)")
    say()
    say("| stage | wall s | × real time |")
    say("| --- | ---: | ---: |")
    say(
        f"| CLAP htsat-unfused sizes, {len(wins)} windows of 10 s every 5 s, fp16 | {tc:.2f} | {seconds / tc:.0f}× |"
    )
    say(
        f"| Whisper-base sizes, 30 s chunks, greedy, ≤ 64 new tokens per pass | {tw:.2f} | {seconds / tw:.0f}× |"
    )
    say(
        f"| whole `Library.add` (decode, CLAP, Whisper, transcript text embedding) | {tl:.2f} | {seconds / tl:.0f}× |"
    )
    say()


def main() -> int:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--video-seconds", type=float, default=60.0)
    ap.add_argument("--audio-minutes", type=float, default=10.0)
    ap.add_argument("--device", default="cuda", help="cpu for a dry run of the script itself")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2
    say("## GPU checks")
    say()
    name = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "CPU (dry run)"
    say(
        f"- Device: {name}; torch {torch.__version__}; "
        f"{os.cpu_count()} CPU cores; Python {platform.python_version()}"
    )
    say("- Command: `python benchmarks/gpu_checks.py --out gpu.md` (one run)")
    say()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for step in ("encoder", "video", "audio"):
            try:
                if step == "encoder":
                    build_hf(64, work)
                    gpu = encoder_check(work / "hf-clip-vit-base-patch32-random")
                elif step == "video":
                    video_check(gpu, work, args.video_seconds)
                else:
                    audio_check(gpu, work, args.audio_minutes)
            except Exception as exc:  # report and go on: the GPU time is scarce
                import traceback

                traceback.print_exc()
                say(f"**{step} check failed**: {type(exc).__name__}: {exc}\n")
            args.out.write_text("\n".join(LINES) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
