"""Load test of ``mmsearch serve``: concurrent clients on loopback, text and image queries.

    .venv/bin/python benchmarks/bench_server_load.py [--n 100000] [--dim 384] [--clients 32]
        [--seconds 25] [--library-dir DIR]

Builds a library of ``n`` image items whose vectors are synthetic (clustered unit
vectors written through the catalog, as ``bench_library_search.py`` does; the
planner's index is built and saved once, and ``--library-dir`` keeps it for the
next run), starts the server in its own process with a *fast fake encoder*
(text and pixels hash to a unit vector in microseconds), then drives
``POST /api/search`` from ``--clients`` concurrent httpx clients: a warm-up,
``--seconds`` of text queries, ``--seconds`` of image queries (base64 JPEGs in
JSON, so the server decodes, checks and embeds a real image each time). The
figures measure the server (HTTP, validation, readers, FAISS, SQLite, JSON),
not a model. The server's resident memory is sampled throughout. Writes
benchmarks/results/server-load.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "server-load.md"
sys.path.insert(0, str(Path(__file__).parent))


# -- the fake encoder the server runs with ----------------------------------------------------
def _pixels(image: Any) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.float32) / 255.0


def _unit(seed_bytes: bytes, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(seed_bytes, digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def fast_encoder(dim: int) -> Any:
    """Texts and images -> deterministic pseudo-random unit vectors, in the space
    ``bench_library_search.fill`` records (same model id, dimension, preprocessing)."""
    from mmsearch.encoders.base import EncoderInfo, ImageEncoderMixin

    class FastEncoder(ImageEncoderMixin):
        def __init__(self, size: int) -> None:
            self.size = size
            self.info = EncoderInfo("bench:vectors", "bench", "bench/vectors", size)

        @property
        def dim(self) -> int:
            return self.size

        def encode_text(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
            return np.stack([_unit(t.encode(), self.size) for t in texts])

        def image_preprocessor(self) -> Any:
            return _pixels

        def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
            return np.stack([_unit(p.tobytes(), self.size) for p in pixels])

    return FastEncoder(dim)


# -- building the library -------------------------------------------------------------------
def prepare(lib_dir: Path, n: int, dim: int) -> dict[str, float]:
    from bench_library_search import clustered, fill

    from mmsearch.library import Library

    meta = lib_dir / "bench-build.json"
    if (lib_dir / "catalog.sqlite").exists():
        return dict(json.loads(meta.read_text())) if meta.exists() else {}
    times: dict[str, float] = {}
    lib_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    fill(lib_dir, clustered(n, dim))
    times["fill_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with Library.open(lib_dir, encoder=fast_encoder(dim)) as lib:
        lib.vectors.get("image")  # builds the planner's index; saved on close
    times["build_s"] = time.perf_counter() - t
    meta.write_text(json.dumps(times))
    return times


# -- the server process ----------------------------------------------------------------------
def serve(lib_dir: Path, port: int, dim: int) -> None:
    import uvicorn

    from mmsearch.server import create_app

    app = create_app(lib_dir, encoder=fast_encoder(dim))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(m.group(1)) / 1024 if m else float("nan")


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, str, float]] = []
        self.phase = "start"
        self.stop = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.wait(self.every):
            self.samples.append((time.monotonic() - t0, self.phase, rss_mib(self.pid)))


# -- the clients -----------------------------------------------------------------------------
def text_bodies(count: int) -> list[bytes]:
    words = ["red", "car", "beach", "dog", "city", "night", "snow", "forest", "cat", "river"]
    rng = np.random.default_rng(1)
    return [
        json.dumps({"text": " ".join(rng.choice(words, 3)) + f" {i}", "k": 10}).encode()
        for i in range(count)
    ]


def image_bodies(count: int) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(2)
    out = []
    for _ in range(count):
        arr = rng.integers(0, 256, size=(96, 128, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=85)
        out.append(
            json.dumps({"image": base64.b64encode(buf.getvalue()).decode(), "k": 10}).encode()
        )
    return out


async def drive(url: str, bodies: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        stop = time.perf_counter() + seconds

        async def worker(i: int) -> None:
            j = i
            while time.perf_counter() < stop:
                body = bodies[j % len(bodies)]
                j += clients
                t = time.perf_counter()
                try:
                    r = await client.post("/api/search", content=body, headers=headers)
                    if r.status_code != 200 or b'"hits":[{' not in r.content:
                        errors.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "qps": len(latencies) / wall,
        "p50": float(np.percentile(lat, 50)),
        "p90": float(np.percentile(lat, 90)),
        "p99": float(np.percentile(lat, 99)),
        "max": float(lat.max()),
    }


def server_side(url: str) -> dict[str, float]:
    """Mean in-server search time per query kind, from the server's own /metrics."""
    import httpx

    text = httpx.get(url + "/metrics", timeout=10).text
    sums = dict(re.findall(r'mmsearch_search_duration_seconds_sum\{kind="(\w+)"\} (\S+)', text))
    counts = dict(re.findall(r'mmsearch_search_duration_seconds_count\{kind="(\w+)"\} (\S+)', text))
    return {k: 1000 * float(sums[k]) / max(1.0, float(counts[k])) for k in sums}


# -- the run -----------------------------------------------------------------------------------
def _uvicorn_stack() -> str:
    import importlib.util

    fast = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m)]
    return "with " + " and ".join(fast) if fast else "with h11 and asyncio (no httptools/uvloop)"


def machine() -> str:
    import faiss

    cpu = subprocess.run(
        "lscpu | grep 'Model name' | sed 's/.*: *//'", shell=True, capture_output=True, text=True
    ).stdout.strip()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}, "
        f"faiss {faiss.__version__}"
    )


def run(args: argparse.Namespace, lib_dir: Path) -> None:
    from mmsearch.library import Library

    times = prepare(lib_dir, args.n, args.dim)
    args.load_before = os.getloadavg()[0]
    with Library.open(lib_dir, readonly=True, encoder=fast_encoder(args.dim)) as lib:
        index = str(lib.vectors.get("image").spec)
        items = lib.catalog.counts()["items"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        __file__,
        "--serve",
        str(lib_dir),
        "--port",
        str(port),
        "--dim",
        str(args.dim),
    ]
    proc = subprocess.Popen(
        cmd, env={**os.environ, **dict(kv.split("=", 1) for kv in args.server_env)}
    )
    try:
        _wait_healthy(url, proc)
        sampler = RssSampler(proc.pid)
        sampler.start()
        texts, images = text_bodies(2000), image_bodies(64)
        sampler.phase = "warm-up"
        asyncio.run(drive(url, texts[:200] + images[:8], args.clients, args.warmup))
        sampler.phase = "text"
        text = measured(
            proc.pid, lambda: asyncio.run(drive(url, texts, args.clients, args.seconds))
        )
        sampler.phase = "image"
        image = measured(
            proc.pid, lambda: asyncio.run(drive(url, images, args.clients, args.seconds))
        )
        sampler.stop.set()
        sampler.join()
        inside = server_side(url)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    report(args, items, index, times, text, image, inside, sampler.samples)


def measured(pid: int, phase: Any) -> dict[str, Any]:
    """Run one load phase; add the CPU time per request of the server and of the clients."""
    server0, client0 = cpu_seconds(pid), own_cpu_seconds()
    out: dict[str, Any] = phase()
    n = max(1, out["requests"])
    out["server_cpu_ms"] = 1000 * (cpu_seconds(pid) - server0) / n
    out["client_cpu_ms"] = 1000 * (own_cpu_seconds() - client0) / n
    return out


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become healthy")


def report(
    args: argparse.Namespace,
    items: int,
    index: str,
    times: dict[str, float],
    text: dict[str, Any],
    image: dict[str, Any],
    inside: dict[str, float],
    samples: list[tuple[float, str, float]],
) -> None:
    loaded = [(t, r) for t, phase, r in samples if phase in ("text", "image")]
    ts = np.array([t for t, _ in loaded])
    rs = np.array([r for _, r in loaded])
    slope = float(np.polyfit(ts, rs, 1)[0]) * 60 if len(ts) > 2 else float("nan")
    built = (
        f" Catalog fill {times['fill_s']:.0f} s, index build {times['build_s']:.0f} s."
        if times
        else " (library reused from --library-dir.)"
    )
    rows = [
        (name, r, inside.get(kind))
        for name, r, kind in (("text", text, "text"), ("image (base64 JPEG)", image, "image"))
    ]
    lines = [
        "## Server under load",
        "",
        f"`.venv/bin/python benchmarks/bench_server_load.py --n {args.n} --dim {args.dim} "
        f"--clients {args.clients} --seconds {args.seconds:g}` — {machine()}, "
        f"{time.strftime('%Y-%m-%d')}, load average {args.load_before:.1f} before the run "
        f"(the machine is shared). {items:,} items with synthetic {args.dim}-d vectors, index "
        f"`{index}` chosen by the planner.{built} One uvicorn process with the default readers; "
        f"the {args.clients} httpx clients run on the same 2 cores. The encoder is a fast fake "
        "(hashing, microseconds), so the figures measure the server, not a model. k = 10.",
        "",
        "| queries | requests | errors | QPS | p50 ms | p90 ms | p99 ms | in-server search ms "
        "| server CPU ms/query | client CPU ms/query |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *[
            f"| {name} | {r['requests']:,} | {r['errors']} | {r['qps']:.0f} | {r['p50']:.1f} | "
            f"{r['p90']:.1f} | {r['p99']:.1f} | {_ms(srv)} | {r['server_cpu_ms']:.2f} | "
            f"{r['client_cpu_ms']:.2f} |"
            for name, r, srv in rows
        ],
        "",
        f"Server resident memory under load: {rs[0]:.0f} MiB at the start, {_phase_end(samples, 'text'):.0f} "
        f"MiB after the text phase, {rs[-1]:.0f} MiB at the end, {rs.max():.0f} MiB at most "
        f"({len(rs)} samples over {ts[-1] - ts[0]:.0f} s; linear trend {slope:+.1f} MiB/min).",
        "",
        f"Latency is what a client sees with {args.clients} requests in flight: mostly the queue "
        "behind two cores that the server and the load generator share. In-server search time is "
        "one search from the request's parts to JSON hits once it has a reader, measured by the "
        "server itself (`mmsearch_search_duration_seconds`); CPU per query is the process's CPU "
        "time over the phase divided by its requests (HTTP, JSON, validation and search "
        f"together). uvicorn {_uvicorn_stack()}.",
    ]
    for r in (text, image):
        for e in r["first_errors"]:
            lines.append(f"\nfirst error: `{e}`")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _phase_end(samples: list[tuple[float, str, float]], phase: str) -> float:
    return [r for _, p, r in samples if p == phase][-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=25.0, help="seconds of each load phase")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="K=V",
        help="environment of the server process (e.g. OMP_NUM_THREADS=1)",
    )
    ap.add_argument("--library-dir", type=Path, help="build here and keep (reused if present)")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.dim)
        return
    if args.library_dir:
        run(args, args.library_dir)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp) / "lib")


if __name__ == "__main__":
    main()
