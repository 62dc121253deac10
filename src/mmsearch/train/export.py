"""Write the trained model as a model folder, with a card that says how it was made.

The folder is in the base model's own format (transformers ``save_pretrained``,
open_clip's ``open_clip_config.json`` + weights, or mmsearch's tiny format), so
``--model ./folder`` and ``load_encoder("./folder")`` load it like any other model.
Beside the weights: ``mmsearch_card.json`` (machine-readable) and ``README.md``
(the same facts for people): base model, data, method, loss, epochs and validation
recall. LoRA weights are merged and adapters folded before writing.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from mmsearch import __version__
from mmsearch.train import methods
from mmsearch.train.model import ContrastiveModel

CARD_JSON = "mmsearch_card.json"
CARD_MD = "README.md"
CARD_FORMAT = 1


def weights_digest(model: Any) -> str:
    """Short hash of a module's weights: an identity that changes with any trained weight."""
    h = hashlib.blake2b(digest_size=6)
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def export_model(model: ContrastiveModel, out: Path, card: dict[str, Any]) -> dict[str, Any]:
    """Finalize ``model`` (merge/fold, in place), write it and its card to ``out``; return the card."""
    methods.finalize(model)
    model_id = f"mmsearch-trained/{out.resolve().name}-{weights_digest(model.net)}"
    model.towers.export(out, model_id)
    card = {
        "format": "mmsearch-model-card",
        "format_version": CARD_FORMAT,
        "model_id": model_id,
        "backend": model.towers.backend,
        **card,
        "mmsearch_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / CARD_JSON).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    (out / CARD_MD).write_text(render_card(card), encoding="utf-8")
    return card


def _pct(v: Any) -> str:
    return f"{100 * float(v):.1f}" if isinstance(v, int | float) and v == v else "–"


def render_card(card: dict[str, Any]) -> str:
    """The card as Markdown."""
    base = card.get("base", {})
    data = card.get("data", {})
    val = card.get("validation") or {}
    ks = card.get("ks", [1, 5, 10])
    lines = [
        f"# {card['model_id']}",
        "",
        f"Trained with `mmsearch train` ({card['mmsearch_version']}) on {card['created']}.",
        "Use it wherever a model spec is accepted: `--model <this folder>` or "
        '`mmsearch.load_encoder("<this folder>")`.',
        "",
        "| | |",
        "| --- | --- |",
        f"| base model | `{base.get('spec', '?')}` ({base.get('model_id', 'new weights')}) |",
        f"| backend / format | {card['backend']} |",
        f"| method | {card.get('method')}: {card.get('method_description', '')} |",
        f"| loss | {card.get('loss')} |",
        f"| data | `{data.get('source')}`: {data.get('train_pairs')} pairs of "
        f"{data.get('train_media')} images |",
        f"| validation | {data.get('validation', 'none')} |",
        f"| epochs | {card.get('epochs_run')} run, best {card.get('best_epoch')} |",
        f"| optimizer steps | {card.get('steps')} |",
        f"| contrastive batch | {card.get('batch', {}).get('contrastive_batch')} |",
        f"| learning rate | {card.get('lr')} |",
        f"| trainable weights | {card.get('params', {}).get('trainable')} of "
        f"{card.get('params', {}).get('total')} |",
        f"| training time | {card.get('seconds')} s on {card.get('device')} |",
        "",
    ]
    if val:
        lines += ["## Validation recall (%)", "", "| direction | " + " | ".join(
            f"R@{k}" for k in ks) + " |", "| --- |" + " --- |" * len(ks)]  # fmt: skip
        for d, name in (("t2m", "text → image"), ("m2t", "image → text")):
            lines.append(
                f"| {name} | " + " | ".join(_pct(val.get(f"{d}_R@{k}")) for k in ks) + " |"
            )
        lines.append("")
    lines += ["The full record is in `mmsearch_card.json`.", ""]
    return "\n".join(lines)
