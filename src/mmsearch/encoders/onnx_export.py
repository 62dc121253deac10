"""Export a torch encoder (``hf`` or ``openclip`` backend) to an ONNX model folder.

The folder holds two graphs with a dynamic batch axis — ``image.onnx``
(``pixel_values`` -> embedding) and ``text.onnx`` (token ids [+ mask] ->
embedding), both unnormalised, each with its weights aligned in ``<graph>.data``
so that onnxruntime memory-maps them (:mod:`~mmsearch.encoders.onnx_weights`) —
plus a `tokenizers` ``tokenizer.json`` and ``mmsearch_onnx.json``, which
:mod:`mmsearch.encoders.onnx` reads. The JSON
keeps the source model's ``model_id``, ``dim`` and ``preprocessing`` so the
export shares the source's space (fingerprint).

Each source family is a small adapter (:data:`_PLANNERS`, keyed by the
encoder's backend) that says which torch modules to trace, how the text is
tokenized and how images are preprocessed. After writing, the export is
checked against the source: token ids on a set of probe strings (English,
Chinese, punctuation, over-long text) must be equal, and embeddings must
agree (cosine >= 0.999 for fp32); the measured figures are stored in the JSON.

``quantize="int8"`` applies onnxruntime's dynamic int8 quantisation to the
weights of the matrix multiplications of both graphs (token embeddings stay
fp32): faster on CPU and smaller on disk, at a small cost in embedding
fidelity (measured against the source, recorded, logged when below 0.99).

torch, transformers and open_clip are imported only inside functions.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch._lazy import require
from mmsearch.encoders.base import Encoder
from mmsearch.encoders.onnx import (
    CONFIG_FILE,
    FORMAT_VERSION,
    OnnxEncoder,
    TextConfig,
)
from mmsearch.encoders.onnx_weights import save_aligned
from mmsearch.encoders.preprocess_np import ImageConfig
from mmsearch.errors import MMSearchError

log = logging.getLogger(__name__)

QUANTIZATIONS = ("int8",)
GRAPH_FILES = ("image.onnx", "text.onnx")
_EXPORTERS = (False, True)
"""``dynamo`` flags of torch.onnx.export, tried in order: TorchScript first (fast, robust
for these models), then the dynamo exporter."""
_PROTOBUF_LIMIT = 2_000_000_000
"""Above this size the quantizer is told to write its output's weights to a side file (the
final graphs always keep their weights in ``<name>.data``, see :mod:`onnx_weights`)."""
MIN_COSINE_FP32 = 0.999
WARN_COSINE_INT8 = 0.99

PROBE_TEXTS: tuple[str, ...] = (
    "a photo of a dog on the beach",
    "A Red CAR, in the city at night!!",
    "一只狗在海滩上",
    "狗和猫，红色的汽车。",
    "  two   cats\tand a bird  ",
    "it's the quick-brown fox's (tail) & ears; 3.14 > 2?",
    "Ünïcödé café naïve ﬁancé",
    "&amp; html &lt;tag&gt;",
    "",
    "x",
    " ".join(["word"] * 120),
)
"""Strings whose token ids must be equal to the source tokenizer's after export."""


class OnnxExportError(MMSearchError):
    """A model cannot be exported, or its export does not reproduce the source model."""


@dataclass
class ExportPlan:
    """What one source family contributes to an export (see the planners below)."""

    image_module: Any
    """torch module: pixel_values (N, 3, H, W) -> (N, dim) embeddings."""
    text_module: Any
    """torch module: the tensors named by ``text_config.inputs``, in order -> (N, dim)."""
    tokenizer: Any
    """A `tokenizers.Tokenizer` reproducing the source's token ids (with ``text_config``)."""
    text_config: TextConfig
    image_config: ImageConfig
    reference_tokenize: Callable[[list[str]], dict[str, np.ndarray]]
    """The source's own tokenization, as the torch backend calls it."""
    image_size: tuple[int, int]


# ---- public entry points ------------------------------------------------------------------


def export_onnx_command(spec: str, out: str, quantize: str | None = None) -> Path:
    """What ``mmsearch models export-onnx SPEC OUT [--quantize int8]`` runs; returns the folder."""
    return export_onnx(spec, out, quantize=quantize)


def export_onnx(
    spec_or_encoder: str | Encoder,
    out_dir: str | Path,
    *,
    quantize: str | None = None,
    opset: int = 17,
    verify: bool = True,
) -> Path:
    """Export an encoder (a spec, or a loaded ``hf``/``openclip`` encoder) to ``out_dir``.

    Returns the folder, loadable with ``mmsearch.load_encoder(str(out_dir))``
    or ``onnx:<out_dir>``. Raises :class:`OnnxExportError` when the model
    family cannot be exported or the export does not match the source.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise OnnxExportError(f"unknown quantization {quantize!r}; known: {QUANTIZATIONS}")
    encoder = _load_source(spec_or_encoder)
    planner = _PLANNERS.get(encoder.info.backend)
    if planner is None:
        raise OnnxExportError(
            f"cannot export {encoder.info.spec!r}: backend {encoder.info.backend!r} has no ONNX "
            f"exporter (supported: {', '.join(sorted(_PLANNERS))})"
        )
    plan = planner(encoder)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).unlink(missing_ok=True)  # a half-written folder must not load
    with tempfile.TemporaryDirectory(prefix="mmsearch-onnx-") as tmp:
        work = Path(tmp)
        _export_graphs(plan, work, opset)
        for name in GRAPH_FILES:
            (out / f"{name}.data").unlink(missing_ok=True)  # from an earlier export
            exported = work / Path(name).stem / name
            if quantize == "int8":
                quantize_int8(exported, out / name)
            else:
                _copy_graph(exported, out / name)
    plan.tokenizer.save(str(out / plan.text_config.tokenizer_file))
    config = _config_json(encoder, plan, quantize, opset)
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False))
    if verify:
        try:
            config["verification"] = verify_export(encoder, plan, out, quantize)
        except OnnxExportError:
            (out / CONFIG_FILE).unlink(missing_ok=True)  # leave no loadable, wrong export
            raise
        (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False))
    log.info("exported %s to %s (%s)", encoder.info.model_id, out, quantize or "fp32")
    return out


def _load_source(spec_or_encoder: str | Encoder) -> Any:
    if not isinstance(spec_or_encoder, str):
        return spec_or_encoder
    from mmsearch.encoders.registry import load_encoder

    return load_encoder(spec_or_encoder, device="cpu")


def _config_json(
    encoder: Any, plan: ExportPlan, quantize: str | None, opset: int
) -> dict[str, Any]:
    import mmsearch

    torch = require("torch")
    onnx = require("onnx")
    info = encoder.info
    return {
        "format_version": FORMAT_VERSION,
        "model_id": info.model_id,
        "dim": info.dim,
        "preprocessing": info.preprocessing,
        "source": {"spec": info.spec, "backend": info.backend, "extra": info.extra},
        "quantization": quantize,
        "image": {
            "file": "image.onnx",
            "input": "pixel_values",
            "preprocess": plan.image_config.to_dict(),
        },
        "text": {"file": "text.onnx", "tokenizer": plan.text_config.to_dict()},
        "opset": opset,
        "exported": {
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "mmsearch": mmsearch.__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
        },
    }


# ---- tracing ---------------------------------------------------------------------------------


def _export_graphs(plan: ExportPlan, folder: Path, opset: int) -> None:
    torch = require("torch")
    h, w = plan.image_size
    pixels = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    _export_one(
        plan.image_module,
        (pixels,),
        folder / "image" / "image.onnx",
        ["pixel_values"],
        {"pixel_values": {0: "batch"}},
        opset,
    )
    sample = plan.reference_tokenize(["a photo of a dog", "一只狗"])
    names = list(plan.text_config.inputs)
    tensors = tuple(torch.from_numpy(np.asarray(sample[n], dtype=np.int64)) for n in names)
    seq_axis = {1: "sequence"} if plan.text_config.padding == "longest" else {}
    axes = {n: {0: "batch", **seq_axis} for n in names}
    _export_one(plan.text_module, tensors, folder / "text" / "text.onnx", names, axes, opset)


def _export_one(
    module: Any,
    args: tuple[Any, ...],
    path: Path,
    input_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    opset: int,
) -> None:
    """torch.onnx.export with the TorchScript exporter, falling back to the dynamo one."""
    torch = require("torch")
    axes = {**dynamic_axes, "embeddings": {0: "batch"}}
    module = module.eval()
    errors = []
    for dynamo in _EXPORTERS:
        shutil.rmtree(path.parent, ignore_errors=True)  # nothing left from a failed attempt
        path.parent.mkdir(parents=True)
        try:
            # Not under no_grad: nn.MultiheadAttention's no-grad fast path has no ONNX export.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    args,
                    str(path),
                    input_names=input_names,
                    output_names=["embeddings"],
                    opset_version=opset,
                    do_constant_folding=True,
                    dynamo=dynamo,
                    verbose=False,
                    **_dynamic(dynamo, input_names, axes),
                )
            return
        except Exception as exc:  # exporters raise many unrelated types
            errors.append(f"{'dynamo' if dynamo else 'torchscript'}: {exc}")
            log.debug("ONNX export of %s (dynamo=%s) failed: %s", path.name, dynamo, exc)
    raise OnnxExportError(f"torch.onnx.export failed for {path.name}: " + " | ".join(errors))


def _dynamic(
    dynamo: bool, input_names: list[str], axes: dict[str, dict[int, str]]
) -> dict[str, Any]:
    """Dynamic axes as each exporter wants them (the towers take their inputs as ``*inputs``)."""
    if not dynamo:
        return {"dynamic_axes": axes}
    torch = require("torch")
    shapes = tuple({i: torch.export.Dim.DYNAMIC for i in axes[n]} for n in input_names)
    return {"dynamic_shapes": (shapes,)}


def _graph_bytes(src: Path) -> int:
    """Size of an exported graph with its weights (the exporter's folder holds nothing else)."""
    return sum(p.stat().st_size for p in src.parent.iterdir() if p.is_file())


def _copy_graph(src: Path, dst: Path) -> None:
    """Write an exported graph to ``dst``, its weights aligned in ``<dst>.data`` (memory-mapped
    by onnxruntime on load: a cold query reads only what it touches)."""
    onnx = require("onnx")
    save_aligned(onnx.load(str(src)), dst)  # onnx.load reads weights kept in other files too


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation of MatMul/Gemm weights, per output channel.

    Activations are quantised at run time. Per-channel scales cost nothing in
    speed here and keep embeddings closer to fp32 than one scale per tensor.
    """
    quant = require("onnxruntime.quantization")
    root = logging.getLogger()
    quiet = _DropRecords()
    root.addFilter(quiet)  # the quantizer logs per-tensor notes through the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant.quantize_dynamic(
                str(src),
                str(dst),
                weight_type=quant.QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Gemm"],
                per_channel=True,
                extra_options={"MatMulConstBOnly": True},
                use_external_data_format=_graph_bytes(src) > _PROTOBUF_LIMIT,
            )
    finally:
        root.removeFilter(quiet)
    _copy_graph(dst, dst)  # the same aligned side file as an fp32 export


class _DropRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


# ---- verification ------------------------------------------------------------------------------


def verify_export(
    encoder: Any, plan: ExportPlan, folder: Path, quantize: str | None
) -> dict[str, Any]:
    """Compare the export with its source; raise when fp32 parity fails. Returns the figures."""
    onnx_enc = OnnxEncoder(folder, spec=str(folder), device="cpu")
    texts = list(PROBE_TEXTS)
    ref = plan.reference_tokenize(texts)
    mine = onnx_enc.tokenizer(texts)
    for name in plan.text_config.inputs:
        a, b = np.asarray(ref[name]), mine[name]
        if a.shape != b.shape or not np.array_equal(a, b):
            bad = [t for i, t in enumerate(texts) if i >= len(b) or not np.array_equal(a[i], b[i])]
            raise OnnxExportError(
                f"the exported tokenizer does not reproduce the source's {name} "
                f"(first mismatch: {bad[:1]!r})"
            )
    # A text whose every token is masked (e.g. "" for a tokenizer that adds no special
    # tokens) has no defined embedding; exporters differ on it, so it is not compared.
    mask = ref.get("attention_mask")
    defined = [t for i, t in enumerate(texts) if mask is None or np.asarray(mask)[i].any()]
    text_cos = _row_cosines(encoder.encode_text(defined), onnx_enc.encode_text(defined))
    h, w = plan.image_size
    pixels = np.random.default_rng(0).standard_normal((4, 3, h, w)).astype(np.float32)
    image_cos = _row_cosines(encoder.encode_pixels(pixels), onnx_enc.encode_pixels(pixels))
    figures = {
        "probe_texts": len(texts),
        "token_ids_equal": True,
        "text_cosine_min": round(float(text_cos.min()), 6),
        "image_cosine_min": round(float(image_cos.min()), 6),
    }
    worst = min(figures["text_cosine_min"], figures["image_cosine_min"])
    if quantize is None and worst < MIN_COSINE_FP32:
        raise OnnxExportError(
            f"the ONNX export differs from the source model: cosine {worst:.5f} < {MIN_COSINE_FP32}"
        )
    if quantize is not None and worst < WARN_COSINE_INT8:
        log.warning("int8 export: embeddings agree with the source at cosine %.4f only", worst)
    return figures


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.asarray((a * b).sum(axis=1))


# ---- shared tokenizer helpers -----------------------------------------------------------------


def _fresh(tokenizer: Any) -> Any:
    """A copy of a `tokenizers.Tokenizer` with no padding or truncation set."""
    tokenizers = require("tokenizers")
    tok = tokenizers.Tokenizer.from_str(tokenizer.to_str())
    tok.no_padding()
    tok.no_truncation()
    return tok


def _special_template(hf_tokenizer: Any) -> tuple[list[int], list[int]]:
    """Ids a slow transformers tokenizer puts before and after a sequence."""
    sentinel = [10_000_001, 10_000_002]
    full = list(hf_tokenizer.build_inputs_with_special_tokens(sentinel))
    at = full.index(sentinel[0])
    return full[:at], full[at + 2 :]


def _backend_tokenizer(hf_tokenizer: Any) -> Any:
    """The `tokenizers` object behind a transformers tokenizer, converting a slow one if needed."""
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return _fresh(backend)
    convert = require("transformers.convert_slow_tokenizer")
    tokenizers = require("tokenizers")
    try:
        tok = convert.SpmConverter(hf_tokenizer).converted()
    except Exception as exc:  # converters raise assorted errors for unknown vocab formats
        raise OnnxExportError(
            f"cannot convert the {type(hf_tokenizer).__name__} tokenizer to a tokenizers file: {exc}"
        ) from exc
    before, after = _special_template(hf_tokenizer)
    ids = before + after
    names = [hf_tokenizer.convert_ids_to_tokens(i) for i in ids]
    single = " ".join([*names[: len(before)], "$A", *names[len(before) :]])
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single=single, special_tokens=sorted(set(zip(names, ids, strict=True)))
    )
    return _fresh(tok)


_SLOW_TOKENIZER_CLEANING: dict[str, Callable[[Any], tuple[str, ...]]] = {
    # SiglipTokenizer canonicalizes in Python before SentencePiece sees the text.
    "SiglipTokenizer": lambda tok: (
        *(("lower",) if getattr(tok, "do_lower_case", True) else ()),
        "strip_punctuation",
        "whitespace",
    ),
}


def _hf_text_config(
    hf_tokenizer: Any,
    inputs: Sequence[str],
    *,
    max_length: int,
    padding: str,
    clean: tuple[str, ...] = (),
    strip_token_id: int | None = None,
) -> TextConfig:
    pad_id = hf_tokenizer.pad_token_id
    return TextConfig(
        inputs=tuple(n for n in ("input_ids", "attention_mask", "token_type_ids") if n in inputs),
        max_length=int(max_length),
        padding=padding,
        pad_id=int(pad_id if pad_id is not None else 0),
        pad_token=str(hf_tokenizer.pad_token or ""),
        padding_side=str(getattr(hf_tokenizer, "padding_side", "right")),
        truncation_side=str(getattr(hf_tokenizer, "truncation_side", "right")),
        clean=clean,
        strip_token_id=strip_token_id,
    )


# ---- transformers (hf backend) -------------------------------------------------------------------


def _hf_image_config(record: dict[str, Any]) -> ImageConfig:
    """An :class:`ImageConfig` from the image-processor settings the hf backend records."""
    if record.get("patch_size") or record.get("max_num_patches"):
        raise OnnxExportError("NaFlex (variable patch grid) image processors cannot be exported")
    if record.get("do_pad"):
        raise OnnxExportError("image processors that pad cannot be exported")
    if record.get("include_top") and record.get("do_normalize"):
        raise OnnxExportError("EfficientNet's include_top normalisation is not supported")
    size = record.get("size") or {}
    resize, dims = "none", (0, 0)
    if record.get("do_resize", True):
        if "shortest_edge" in size and not size.get("longest_edge"):
            resize, dims = "shortest_edge", (size["shortest_edge"], size["shortest_edge"])
        elif "height" in size and "width" in size:
            resize, dims = "exact", (size["height"], size["width"])
        else:
            raise OnnxExportError(f"unsupported image resize settings {size}")
    crop = None
    if record.get("do_center_crop"):
        crop_size = record.get("crop_size") or {}
        crop = (int(crop_size["height"]), int(crop_size["width"]))
    normalize = record.get("do_normalize", True)
    return ImageConfig(
        resize=resize,
        size=(int(dims[0]), int(dims[1])),
        resample=str(record.get("resample", "bilinear")),
        crop=crop,
        crop_rounding="floor",
        rescale=float(record.get("rescale_factor", 1 / 255))
        if record.get("do_rescale", True)
        else 1.0,
        offset=-1.0 if record.get("rescale_offset") else 0.0,
        mean=tuple(record["image_mean"]) if normalize else None,
        std=tuple(record["image_std"]) if normalize else None,
    )


def _fixed_size(cfg: ImageConfig) -> tuple[int, int]:
    try:
        return cfg.output_size
    except MMSearchError as exc:
        raise OnnxExportError(str(exc)) from exc


def _cpu_fp32(model: Any) -> Any:
    """The model itself when on CPU in fp32, else a CPU fp32 copy (the encoder keeps its own)."""
    import copy

    torch = require("torch")
    param = next(model.parameters())
    if param.device.type == "cpu" and param.dtype == torch.float32:
        return model
    return copy.deepcopy(model).to(device="cpu", dtype=torch.float32)


def _tower(model: Any, forward: Callable[..., Any]) -> Any:
    """A torch module whose ``forward(*inputs)`` is ``forward(model, *inputs)``."""
    torch = require("torch")
    base: Any = torch.nn.Module

    class Tower(base):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return forward(self.model, *inputs)

    return Tower()


def _features(out: Any) -> Any:
    """Features from ``get_*_features``: a tensor, or an output object holding them as pooler_output."""
    torch = require("torch")
    return out if torch.is_tensor(out) else out.pooler_output


def _plan_hf(encoder: Any) -> ExportPlan:
    if encoder.family.naflex:
        raise OnnxExportError(
            f"{encoder.info.spec!r} is a NaFlex model (variable patch grids); only "
            "fixed-resolution checkpoints can be exported"
        )
    model = _cpu_fp32(encoder.model)
    hf_tok = encoder.processor.tokenizer
    padding, max_length = encoder.family.padding, encoder.max_length

    def reference_tokenize(texts: list[str]) -> dict[str, np.ndarray]:
        out = encoder.processor(
            text=texts, padding=padding, max_length=max_length, truncation=True, return_tensors="np"
        )
        return {k: np.asarray(v) for k, v in dict(out).items()}

    inputs = list(reference_tokenize(["a"]).keys())
    clean_of = _SLOW_TOKENIZER_CLEANING.get(type(hf_tok).__name__)
    clean = clean_of(hf_tok) if clean_of else ()
    text_config = _hf_text_config(
        hf_tok, inputs, max_length=max_length, padding=padding, clean=clean
    )
    image_config = _hf_image_config(encoder.info.preprocessing)

    names = text_config.inputs
    image_module = _tower(
        model, lambda m, pixels: _features(m.get_image_features(pixel_values=pixels))
    )
    text_module = _tower(
        model, lambda m, *ids: _features(m.get_text_features(**dict(zip(names, ids, strict=True))))
    )
    return ExportPlan(
        image_module=image_module,
        text_module=text_module,
        tokenizer=_backend_tokenizer(hf_tok),
        text_config=text_config,
        image_config=image_config,
        reference_tokenize=reference_tokenize,
        image_size=_fixed_size(image_config),
    )


# ---- open_clip (openclip backend) ----------------------------------------------------------------

_OPENCLIP_CLEANING: dict[str, tuple[str, ...]] = {
    # open_clip.tokenizer's clean functions, as cleaning steps (basic_clean first).
    "_clean_lower": ("ftfy", "html_unescape", "strip", "whitespace", "lower"),
    "_clean_whitespace": ("ftfy", "html_unescape", "strip", "whitespace"),
    "_clean_canonicalize": (
        "ftfy",
        "html_unescape",
        "strip",
        "underscore_to_space",
        "strip_punctuation",
        "lower",
        "whitespace",
    ),
}


def openclip_bpe_tokenizer(simple_tokenizer: Any) -> Any:
    """open_clip's CLIP BPE tokenizer (``SimpleTokenizer``) as a `tokenizers.Tokenizer`.

    Byte-level BPE over open_clip's vocabulary and merges with the ``</w>``
    end-of-word suffix, its pre-tokenizing regex, and ``<start_of_text> $A
    <end_of_text>`` around each text. Cleaning (ftfy, html, whitespace,
    lower-case) stays in Python: see :data:`_OPENCLIP_CLEANING`.
    """
    tokenizers = require("tokenizers")
    regex = require("regex")
    vocab = dict(simple_tokenizer.encoder)
    ranks = sorted(simple_tokenizer.bpe_ranks.items(), key=lambda kv: kv[1])
    merges = [pair for pair, _ in ranks]
    model = tokenizers.models.BPE(
        vocab=vocab,
        merges=merges,
        continuing_subword_prefix="",
        end_of_word_suffix="</w>",
        fuse_unk=False,
    )
    tok = tokenizers.Tokenizer(model)
    pattern = simple_tokenizer.pat.pattern
    if simple_tokenizer.pat.flags & regex.IGNORECASE:
        pattern = "(?i)" + pattern
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Sequence(
        [
            tokenizers.pre_tokenizers.Split(
                tokenizers.Regex(pattern), behavior="removed", invert=True
            ),
            tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = tokenizers.decoders.ByteLevel()
    specials = [simple_tokenizer.decoder[i] for i in simple_tokenizer.all_special_ids]
    tok.add_special_tokens(specials)
    sot = simple_tokenizer.decoder[simple_tokenizer.sot_token_id]
    eot = simple_tokenizer.decoder[simple_tokenizer.eot_token_id]
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single=f"{sot} $A {eot}",
        special_tokens=[(sot, simple_tokenizer.sot_token_id), (eot, simple_tokenizer.eot_token_id)],
    )
    return tok


def _openclip_text(encoder: Any) -> tuple[Any, TextConfig]:
    """(tokenizers object, TextConfig) for the tokenizer an open_clip encoder uses."""
    octok = require("open_clip.tokenizer")
    tok = encoder.tokenizer
    context_length = int(tok.context_length)
    if isinstance(tok, octok.SimpleTokenizer):
        if tok.reduction_fn is not None:
            raise OnnxExportError("open_clip tokenizers with a reduction mask cannot be exported")
        clean = _OPENCLIP_CLEANING.get(getattr(tok.clean_fn, "__name__", ""))
        if clean is None:
            raise OnnxExportError(f"unknown open_clip text cleaning {tok.clean_fn!r}")
        config = TextConfig(
            max_length=context_length,
            padding="max_length",
            pad_id=0,
            pad_token=tok.decoder[0],
            clean=clean,
        )
        return openclip_bpe_tokenizer(tok), config
    if isinstance(tok, octok.HFTokenizer):
        if tok.tokenizer_mode:
            raise OnnxExportError(
                f"open_clip tokenizer mode {tok.tokenizer_mode!r} is not supported"
            )
        clean = _OPENCLIP_CLEANING.get(getattr(tok.clean_fn, "__name__", ""))
        if clean is None:
            raise OnnxExportError(f"unknown open_clip text cleaning {tok.clean_fn!r}")
        strip = tok.tokenizer.sep_token_id if tok.strip_sep_token else None
        config = _hf_text_config(
            tok.tokenizer,
            ["input_ids"],
            max_length=context_length,
            padding="max_length",
            clean=clean,
            strip_token_id=strip,
        )
        return _backend_tokenizer(tok.tokenizer), config
    if isinstance(tok, octok.SigLipTokenizer):
        config = _hf_text_config(
            tok.tokenizer,
            ["input_ids"],
            max_length=context_length,
            padding="max_length",
            clean=_OPENCLIP_CLEANING["_clean_canonicalize"],
        )
        return _backend_tokenizer(tok.tokenizer), config
    raise OnnxExportError(f"open_clip tokenizer {type(tok).__name__} is not supported")


def _openclip_image_config(cfg: dict[str, Any]) -> ImageConfig:
    """An :class:`ImageConfig` equal to open_clip's eval transform for a preprocess config."""
    size = cfg.get("size", 224)
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    mode = cfg.get("resize_mode") or "shortest"
    resample = "bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic"
    common: dict[str, Any] = {
        "size": (h, w),
        "resample": resample,
        "crop_rounding": "round",
        "fill": int(cfg.get("fill_color", 0) or 0),
        "mean": tuple(cfg.get("mean") or (0.48145466, 0.4578275, 0.40821073)),
        "std": tuple(cfg.get("std") or (0.26862954, 0.26130258, 0.27577711)),
    }
    if mode == "squash":
        return ImageConfig(resize="exact", crop=None, **common)
    if mode == "longest":
        return ImageConfig(resize="keep_ratio", longest=1.0, crop=(h, w), **common)
    if mode == "shortest" and h == w:
        return ImageConfig(resize="shortest_edge", crop=(h, w), **common)
    if mode == "shortest":
        return ImageConfig(resize="keep_ratio", longest=0.0, crop=(h, w), **common)
    raise OnnxExportError(f"unknown open_clip resize mode {mode!r}")


def _plan_openclip(encoder: Any) -> ExportPlan:
    model = _cpu_fp32(encoder.model)
    tokenizer, text_config = _openclip_text(encoder)
    image_config = _openclip_image_config(encoder.info.preprocessing)

    def reference_tokenize(texts: list[str]) -> dict[str, np.ndarray]:
        return {"input_ids": encoder.tokenizer(texts).numpy()}

    return ExportPlan(
        image_module=_tower(model, lambda m, pixels: m.encode_image(pixels)),
        text_module=_tower(model, lambda m, ids: m.encode_text(ids)),
        tokenizer=tokenizer,
        text_config=text_config,
        image_config=image_config,
        reference_tokenize=reference_tokenize,
        image_size=_fixed_size(image_config),
    )


_PLANNERS: dict[str, Callable[[Any], ExportPlan]] = {
    "hf": _plan_hf,
    "openclip": _plan_openclip,
}
"""Encoder backend -> the function that plans its export."""
