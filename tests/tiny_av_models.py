"""Tiny random-weight CLAP, X-CLIP and Whisper checkpoints for tests, built without network.

Each builder writes a complete transformers folder (weights, config, tokenizer
and feature extractor / image processor, and for Whisper its generation
config) into the folder it is given and returns it. Weights are seeded, so a
builder called twice with the same arguments writes the same model.

    make_tiny_clap(folder)      # ClapModel, RoBERTa BPE tokenizer, 8 kHz / 1 s windows
    make_tiny_xclip(folder)     # XCLIPModel, CLIP BPE tokenizer, 8 frames of 32x32
    make_tiny_whisper(folder)   # WhisperForConditionalGeneration, byte-level BPE with
                                # Whisper's special and timestamp tokens, 16 kHz / 30 s

plus the sample inputs the tests share (``tone``, ``make_frames``).
"""

from __future__ import annotations

import contextlib
import string
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tiny_models import _TEXT, _VIT, _bytes_to_unicode, _clip_tokenizer

TIMESTAMPS = 1501
"""Whisper's timestamp tokens <|0.00|> .. <|30.00|> in 0.02 s steps."""


def tone(seconds: float, rate: int, freq: float = 440.0, seed: int = 0) -> Any:
    """A mono float32 test signal: a tone with a slow amplitude sweep and a little noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.4 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    return (wave + rng.normal(0, 0.02, t.size)).astype(np.float32)


def make_frames(count: int, seed: int = 0, size: tuple[int, int] = (40, 48)) -> list[Any]:
    """RGB PIL frames of a bright square moving across a gradient (each frame differs)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(count):
        base = np.stack([xx * 255 / w, yy * 255 / h, np.full_like(xx, 60.0)], axis=-1)
        x0 = (i * 5 + seed * 7) % (w - 10)
        base[10:20, x0 : x0 + 10] = [250, 250, 40]
        noisy = base + rng.normal(0, 8, size=base.shape)
        frames.append(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB"))
    return frames


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: these models are too small to gain from more, and on a shared
    CPU the extra threads' waiting makes generation many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def _save(model: Any, processor: Any, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


# ---- CLAP -------------------------------------------------------------------------------------


def _roberta_tokenizer() -> Any:
    """A byte-level BPE tokenizer laid out like RoBERTa's (CLAP's text tower)."""
    from transformers import RobertaTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in _bytes_to_unicode().values():
        vocab[c] = len(vocab)
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=64)


def make_tiny_clap(folder: str | Path, *, seed: int = 0, fusion: bool = False) -> Path:
    """A tiny ClapModel (HTSAT audio tower, RoBERTa text tower) with its ClapProcessor.

    Like laion/clap-htsat-unfused (``fusion=False``: ``rand_trunc``) or the fused
    checkpoints (``fusion=True``), but at 8 kHz with 1 s windows and 16 mel bins.
    """
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    tok = _roberta_tokenizer()
    text = {**_TEXT, "vocab_size": len(tok), "max_position_embeddings": 66, "projection_dim": 24}
    audio = {
        "num_mel_bins": 16,
        "spec_size": 64,
        "window_size": 4,
        "patch_size": 4,
        "patch_stride": [4, 4],
        "hidden_size": 32,
        "patch_embeds_hidden_size": 16,
        "depths": [1, 1],
        "num_attention_heads": [2, 4],
        "projection_dim": 24,
        "enable_fusion": fusion,
        "fusion_type": "aff_2d" if fusion else None,
    }
    extractor = ClapFeatureExtractor(
        feature_size=16,
        sampling_rate=8000,
        hop_length=80,
        max_length_s=1,
        fft_window_size=256,
        frequency_min=50,
        frequency_max=4000,
        truncation="fusion" if fusion else "rand_trunc",
        padding="repeatpad",
    )
    _seed(seed)
    model = ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=24))
    return _save(model, ClapProcessor(extractor, tok), Path(folder))


# ---- X-CLIP -----------------------------------------------------------------------------------


def make_tiny_xclip(
    folder: str | Path, *, seed: int = 0, num_frames: int = 8, image_processor: str = "videomae"
) -> Path:
    """A tiny XCLIPModel with a CLIP tokenizer and microsoft/xclip-base-patch32's processor layout.

    ``image_processor="videomae"`` (what the real checkpoint ships, returning
    (1, T, C, H, W)) or ``"clip"`` (returning (T, C, H, W)).
    """
    from transformers import (
        CLIPImageProcessor,
        VideoMAEImageProcessor,
        XCLIPConfig,
        XCLIPModel,
        XCLIPProcessor,
    )

    tok = _clip_tokenizer()
    text = {**_TEXT, "vocab_size": len(tok), "max_position_embeddings": 64}
    vision = {
        **_VIT,
        "num_frames": num_frames,
        "mit_hidden_size": 24,
        "mit_intermediate_size": 48,
        "mit_num_hidden_layers": 1,
        "mit_num_attention_heads": 4,
    }
    config = XCLIPConfig(
        text_config=text,
        vision_config=vision,
        projection_dim=24,
        prompt_layers=1,
        prompt_num_attention_heads=4,
    )
    size = {"shortest_edge": 36}
    crop = {"height": 32, "width": 32}
    if image_processor == "videomae":
        images: Any = VideoMAEImageProcessor(
            size=size,
            crop_size=crop,
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        )
    else:
        images = CLIPImageProcessor(size=size, crop_size=crop)
    _seed(seed)
    return _save(
        XCLIPModel(config), XCLIPProcessor(image_processor=images, tokenizer=tok), Path(folder)
    )


# ---- Whisper ----------------------------------------------------------------------------------


def whisper_special_tokens(languages: Sequence[str] | None = None) -> list[str]:
    """Whisper's special tokens in their real order (the language tags follow
    <|startoftranscript|>); ``languages`` defaults to every language transformers knows."""
    if languages is None:
        from transformers.models.whisper.tokenization_whisper import LANGUAGES

        languages = list(LANGUAGES)
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *[f"<|{code}|>" for code in languages],
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
    ]


def _whisper_tokenizer() -> Any:
    """Byte-level BPE over printable ASCII (every token decodes to whole characters), then
    Whisper's special tokens, then the timestamp tokens, as in the real vocabulary."""
    from transformers import WhisperTokenizer

    table = _bytes_to_unicode()
    printable = [table[b] for b in range(256) if chr(b) in string.printable and chr(b).strip()]
    vocab = {c: i for i, c in enumerate([table[ord(" ")], *printable])}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    specials = whisper_special_tokens()
    tok = WhisperTokenizer(
        vocab=vocab, merges=merges, extra_special_tokens=specials[1:], model_max_length=448
    )
    tok.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)])
    return tok


def make_tiny_whisper(folder: str | Path, *, seed: int = 0) -> Path:
    """A tiny multilingual WhisperForConditionalGeneration with processor and generation config.

    The input layout is the real one (16 kHz, 30 s windows, 1500 encoder
    positions), with 16 mel bins and one 32-wide layer on each side.
    """
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    tok = _whisper_tokenizer()
    ids = tok.convert_tokens_to_ids
    eot = ids("<|endoftext|>")
    config = WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=16,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,
        max_target_positions=128,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=ids("<|startoftranscript|>"),
    )
    generation = GenerationConfig(
        decoder_start_token_id=ids("<|startoftranscript|>"),
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        is_multilingual=True,
        lang_to_id={f"<|{c}|>": ids(f"<|{c}|>") for c in LANGUAGES},
        task_to_id={"translate": ids("<|translate|>"), "transcribe": ids("<|transcribe|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50,
        max_length=128,
        begin_suppress_tokens=[ids("Ġ"), eot],
        # As OpenAI's decoder does: no control tokens in the text (only end of text may end it).
        suppress_tokens=[ids(t) for t in whisper_special_tokens()[1:]],
    )
    _seed(seed)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = generation
    processor = WhisperProcessor(WhisperFeatureExtractor(feature_size=16), tok)
    return _save(model, processor, Path(folder))
