"""Fit the demo model's probability of relevance (Platt scaling) and store it in the model.

    python scripts/calibrate_demo_model.py [MODEL_DIR]   # default: the shipped demo model

Relevance comes from the generator's own attributes: a (possibly partial) caption
is relevant to every image it describes (``synthetic.mention_matches``); for image
queries, an image is relevant to another of the same colour and shape. Pairs are
scored by the model (cosine) and a logistic curve is fitted per modality pair
(``text-image``, ``text-text``, ``image-image``, ``image-text``) with both classes
weighted alike. The curve goes into ``mmsearch_model.json`` (``extra.calibration``);
it is not part of the model's fingerprint, so libraries built with it stay valid.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from mmsearch.datasets.synthetic import codes, describe, generate, mention_codes, mention_matches
from mmsearch.encoders.builtin import model_dir
from mmsearch.encoders.tiny import CONFIG_FILE, load
from mmsearch.search.calibrate import fit_platt


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else model_dir("demo")
    enc = load(str(folder), spec=str(folder))
    samples = generate(1500, seed=11)
    rng = np.random.default_rng(11)
    mentions = [describe(s.attrs, "en", rng, partial_prob=0.6) for s in samples[:400]]
    q_text = enc.encode_text([m[0] for m in mentions])
    img = enc.encode_images([s.image for s in samples])
    doc = enc.encode_text([s.caption_en for s in samples])
    rel = mention_matches(
        np.stack([mention_codes(m[1]) for m in mentions]),
        np.stack([codes(s.attrs) for s in samples]),
    )
    attrs = np.stack([codes(s.attrs) for s in samples])
    same = np.all(attrs[:300, None, :3] == attrs[None, :, :3], axis=-1)  # count, shape, colour
    np.fill_diagonal(same[:, :300], False)
    table = {
        "text-image": fit_platt(q_text @ img.T, rel),
        "text-text": fit_platt(q_text @ doc.T, rel),
        "image-image": fit_platt(img[:300] @ img.T, same),
        "image-text": fit_platt(img[:300] @ doc.T, same),
    }
    path = folder / CONFIG_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("extra", {})["calibration"] = {
        k: [round(v.a, 4), round(v.b, 4)] for k, v in table.items()
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for k, v in table.items():
        print(
            f"{k}: a={v.a:.3f} b={v.b:.3f}; p(0.5)={1 / (1 + np.exp(-(v.a * 0.5 + v.b))):.3f}"
            f" p(0.75)={1 / (1 + np.exp(-(v.a * 0.75 + v.b))):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
