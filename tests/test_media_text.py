"""Text files: encodings are detected, bad files refused with reasons, chunks lose nothing."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import pytest

from mmsearch.errors import DecodeError
from mmsearch.media.text import TextChunk, chunk_text, decode_text, read_text_file

ZH = "今天天气很好，我们去公园散步。公园里有很多人！你喜欢散步吗？我很喜欢。"
FR = "Le café était très bon. Nous avons mangé une crème brûlée à côté de l'hôtel."


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# ----------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"plain ascii\n", "plain ascii\n"),
        (codecs.BOM_UTF8 + "héllo wörld".encode(), "héllo wörld"),
        (ZH.encode("utf-8"), ZH),
        (codecs.BOM_UTF16_LE + "hello 世界".encode("utf-16-le"), "hello 世界"),
        (codecs.BOM_UTF16_BE + "hello 世界".encode("utf-16-be"), "hello 世界"),
        ("no BOM here, still UTF-16".encode("utf-16-le"), "no BOM here, still UTF-16"),
        (codecs.BOM_UTF32_LE + "thirty-two".encode("utf-32-le"), "thirty-two"),
        (ZH.encode("gb18030"), ZH),
        (FR.encode("cp1252"), FR),
    ],
    ids=[
        "ascii",
        "utf8-bom",
        "utf8-chinese",
        "utf16le-bom",
        "utf16be-bom",
        "utf16le-no-bom",
        "utf32-bom",
        "gb18030",
        "cp1252",
    ],
)
def test_read_text_file_encodings(tmp_path: Path, data: bytes, expected: str) -> None:
    assert read_text_file(write(tmp_path, "t.txt", data)) == expected


def test_cp1252_accents_followed_by_letters_are_not_read_as_chinese() -> None:
    # "é" + "s" is also a valid GB18030 pair; the heuristic must still pick cp1252.
    text = "Résumés, éléments, détériorés, préférés et éternels."
    assert decode_text(text.encode("cp1252")) == text


def test_newlines_are_normalised(tmp_path: Path) -> None:
    assert read_text_file(write(tmp_path, "w.txt", b"a\r\nb\rc\n")) == "a\nb\nc\n"


@pytest.mark.parametrize("data", [b"", b"   \n\t \r\n", codecs.BOM_UTF8 + b"  \n"])
def test_empty_text_file(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(DecodeError, match="empty text file"):
        read_text_file(write(tmp_path, "e.txt", data))


def test_too_large_text_file(tmp_path: Path) -> None:
    p = write(tmp_path, "big.txt", b"x" * 2_500_001)
    with pytest.raises(DecodeError, match=r"text file too large \(2\.5 MB > 2 MB\)"):
        read_text_file(p, max_bytes=2_000_000)
    assert len(read_text_file(p, max_bytes=3_000_000)) == 2_500_001


def test_binary_content_refused(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4
    with pytest.raises(DecodeError, match="binary content, not text"):
        read_text_file(write(tmp_path, "b.txt", data))
    png_like = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 50
    with pytest.raises(DecodeError, match="binary content"):
        read_text_file(write(tmp_path, "p.md", png_like))


def test_missing_and_special_files(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="no such file"):
        read_text_file(tmp_path / "absent.txt")
    with pytest.raises(DecodeError, match="not a regular file"):
        read_text_file(tmp_path)


# ----------------------------------------------------------------------------- chunking


def _check_chunks(text: str, chunks: list[TextChunk], max_chars: int) -> None:
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert 0 < len(c.text) <= max_chars
        assert c.text == c.text.strip()
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)


def _non_space(s: str) -> str:
    return re.sub(r"\s+", "", s)


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("  A short note.\n") == [TextChunk(2, 15, "A short note.")]
    assert chunk_text("   \n ") == []
    assert chunk_text("") == []


def test_english_chunks_on_sentences_and_lose_nothing() -> None:
    sentences = [
        f"Sentence number {i} talks about topic {i * 7} at some length." for i in range(40)
    ]
    text = " ".join(sentences[:20]) + "\n\n" + " ".join(sentences[20:])
    chunks = chunk_text(text, max_chars=120)
    _check_chunks(text, chunks, 120)
    assert len(chunks) > 5
    assert _non_space("".join(c.text for c in chunks)) == _non_space(text)
    # Every chunk ends at a sentence end: no sentence was cut in two.
    assert all(c.text.endswith(".") for c in chunks)
    # The paragraph break is a chunk boundary.
    assert any(c.text.startswith("Sentence number 20 ") for c in chunks)


def test_chinese_chunks_on_chinese_punctuation() -> None:
    text = ZH * 12
    chunks = chunk_text(text, max_chars=50)
    _check_chunks(text, chunks, 50)
    assert "".join(c.text for c in chunks) == text  # no whitespace at all: exact cover
    assert all(c.text[-1] in "。！？" for c in chunks)


def test_unbreakable_run_is_hard_split() -> None:
    text = "x" * 1000
    chunks = chunk_text(text, max_chars=300)
    assert [len(c.text) for c in chunks] == [300, 300, 300, 100]
    assert "".join(c.text for c in chunks) == text


def test_long_word_inside_prose() -> None:
    text = "short words here " + "y" * 70 + " and then more short words after it."
    chunks = chunk_text(text, max_chars=30)
    _check_chunks(text, chunks, 30)
    assert _non_space("".join(c.text for c in chunks)) == _non_space(text)


def test_overlap_stays_within_limit_and_repeats_context() -> None:
    words = " ".join(f"w{i}" for i in range(200))
    chunks = chunk_text(words, max_chars=60, overlap_chars=20)
    _check_chunks(words, chunks, 60)
    for prev, cur in zip(chunks, chunks[1:], strict=False):
        assert cur.start < prev.end  # overlapping
        assert cur.start == 0 or words[cur.start - 1] == " "  # starts on a word
    assert chunks[-1].text.endswith("w199")


def test_chunk_argument_checks() -> None:
    with pytest.raises(ValueError):
        chunk_text("abc", max_chars=0)
    with pytest.raises(ValueError):
        chunk_text("abc", max_chars=10, overlap_chars=10)
