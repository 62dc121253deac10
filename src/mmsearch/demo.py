"""The offline demo: generate captioned shape images and a video, index them, search.

Runs on a fresh machine with no model hub: the model is ``builtin:demo``, a
small CLIP-style model trained by mmsearch's own code on generated shapes
(see ``mmsearch.train.tiny_trainer``). It knows colours, shapes, sizes and
positions in English and Chinese, and nothing else. The video is a slideshow
of generated shapes (a few seconds each), so a text query lands on a moment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsearch.datasets.synthetic import generate
from mmsearch.encoders.registry import DEMO_MODEL
from mmsearch.ingest.report import IngestReport
from mmsearch.library import Library
from mmsearch.types import Hit

N_IMAGES = 200
N_CAPTIONED = 60
SEED = 20261126
VIDEO_SCENES = 8
SCENE_SECONDS = 2.0
VIDEO_FPS = 5


@dataclass
class DemoQuery:
    title: str
    kwargs: dict[str, Any]
    relevant: Callable[[dict[str, Any]], bool]
    """Whether a hit (its item metadata) is a correct answer."""
    moment: bool = False
    """Judge the hit's best moment (a video scene) rather than the whole item."""


@dataclass
class DemoResult:
    query: DemoQuery
    hits: list[Hit]
    correct: list[bool] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return sum(self.correct) / len(self.correct) if self.correct else 0.0


def shapes_of(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """The shapes in a generated image, as [{"shape", "colour", "size"}, ...]."""
    out = [{"shape": attrs["shape"], "colour": attrs["colour"], "size": attrs.get("size")}]
    if attrs.get("count") == 2:
        out.append(
            {"shape": attrs["shape2"], "colour": attrs["colour2"], "size": attrs.get("size2")}
        )
    return out


def _has(colour: str | None = None, shape: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def check(meta: dict[str, Any]) -> bool:
        return any(
            (colour is None or s.get("colour") == colour)
            and (shape is None or s.get("shape") == shape)
            for s in meta.get("shapes", [])
        )

    return check


def write_media(folder: Path, n: int = N_IMAGES, seed: int = SEED) -> None:
    """Write ``n`` generated images; some with a caption sidecar, all with a JSON sidecar."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, sample in enumerate(generate(n, seed)):
        stem = folder / f"shape_{i:04d}"
        sample.image.save(stem.with_suffix(".png"))
        shapes = shapes_of(sample.attrs)
        meta = {"shapes": shapes, "n_shapes": len(shapes)}
        meta |= {"colour": shapes[0]["colour"], "shape": shapes[0]["shape"]}
        stem.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False))
        if i < N_CAPTIONED:
            stem.with_suffix(".txt").write_text(sample.caption_en + "\n" + sample.caption_zh + "\n")


def write_video(folder: Path, seed: int = SEED + 7) -> None:
    """A slideshow video of generated single shapes, with a JSON sidecar naming each scene."""
    import av
    import numpy as np

    samples = [s for s in generate(VIDEO_SCENES * 4, seed) if s.attrs["count"] == 1]
    scenes = samples[:VIDEO_SCENES]
    path = folder / "slideshow.mp4"
    size = scenes[0].image.size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=VIDEO_FPS)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        frames_per_scene = round(SCENE_SECONDS * VIDEO_FPS)
        for scene in scenes:
            rgb = np.asarray(scene.image.convert("RGB"))
            for _ in range(frames_per_scene):
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    meta = {
        "scenes": [
            {
                "t_start": i * SCENE_SECONDS,
                "t_end": (i + 1) * SCENE_SECONDS,
                "shapes": shapes_of(s.attrs),
            }
            for i, s in enumerate(scenes)
        ]
    }
    path.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False))


def _moment_has(colour: str, shape: str) -> Callable[[dict[str, Any]], bool]:
    """For a video hit: the best moment shows a ``colour`` ``shape``."""

    def check(hit: dict[str, Any]) -> bool:
        seg = hit["segments"][0] if hit.get("segments") else {}
        t0, t1 = seg.get("t_start"), seg.get("t_end")
        if t0 is None or t1 is None:
            return False
        scenes = hit["metadata"].get("sidecar", {}).get("scenes", [])
        return any(
            min(t1, sc["t_end"]) - max(t0, sc["t_start"]) > 0.5 * (t1 - t0)
            and _has(colour, shape)({"shapes": sc["shapes"]})
            for sc in scenes
        )

    return check


def demo_queries(folder: Path) -> list[DemoQuery]:
    probe = next(s for s in generate(50, SEED + 1) if s.attrs["count"] == 1)
    probe_path = folder / "query.png"
    probe.image.save(probe_path)
    first = shapes_of(probe.attrs)[0]
    return [
        DemoQuery("text → image: 'a red circle'", {"query": "a red circle"}, _has("red", "circle")),
        DemoQuery(
            "text → image: 'a blue square'", {"query": "a blue square"}, _has("blue", "square")
        ),
        DemoQuery(
            "text → image (中文): '一个绿色的三角形'",
            {"query": "一个绿色的三角形"},
            _has("green", "triangle"),
        ),
        DemoQuery(
            f"image → image: a new picture of a {first.get('colour')} {first.get('shape')}",
            {"image": str(probe_path)},
            _has(first.get("colour"), first.get("shape")),
        ),
        DemoQuery(
            f"image → text: captions for a {first.get('colour')} {first.get('shape')}",
            {"image": str(probe_path), "modality": "text"},
            _has(first.get("colour"), first.get("shape")),
        ),
        DemoQuery(
            "weighted: '2:a yellow shape' - 'a circle'",
            {"query": '"2:a yellow shape" - "a circle"'},
            lambda m: _has("yellow")(m) and not _has(shape="circle")(m),
        ),
        DemoQuery(
            "filtered: 'a shape' where colour=purple",
            {"query": "a shape", "filters": {"colour": "purple"}},
            _has("purple"),
        ),
    ] + _video_queries(folder)


def _video_queries(folder: Path) -> list[DemoQuery]:
    meta_path = folder / "media" / "slideshow.json"
    if not meta_path.exists():
        return []
    scene = json.loads(meta_path.read_text())["scenes"][VIDEO_SCENES // 2]["shapes"][0]
    colour, shape = scene["colour"], scene["shape"]
    return [
        DemoQuery(
            f"text → video moment: 'a {colour} {shape}'",
            {"query": f"a {colour} {shape}", "filters": {"type": "video"}, "k": 1},
            _moment_has(colour, shape),
            moment=True,
        )
    ]


def _have_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:  # the demo still runs on photos and text without PyAV
        return False
    return True


def run_demo(
    folder: str | os.PathLike[str], *, k: int = 5
) -> tuple[IngestReport, list[DemoResult]]:
    """Build the demo library under ``folder`` and run the example searches."""
    root = Path(folder)
    media = root / "media"
    if not media.exists():
        write_media(media)
        if _have_av():
            write_video(media)
    with Library.open(root / "library", model=DEMO_MODEL) as lib:
        report = lib.add([media], workers=0)
        results = []
        for q in demo_queries(root):
            hits = lib.search(**({"k": k} | q.kwargs))
            correct = [
                q.relevant(h.to_dict()) if q.moment else q.relevant(h.metadata.get("sidecar", {}))
                for h in hits
            ]
            results.append(DemoResult(q, hits, correct))
    return report, results
