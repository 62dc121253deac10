"""Library end to end with the exact colour encoder: add, search, filters, incremental, remove."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

import mmsearch
from mmsearch.errors import ModelMismatchError, QueryError
from mmsearch.library import Library

from fakes import ColourEncoder, solid


def names(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [os.path.basename(h.path) for h in hits]


def test_add_and_search_both_directions(
    tmp_path: Path, media: Path, encoder: ColourEncoder
) -> None:
    with Library.open(tmp_path / "lib", encoder=encoder) as lib:
        report = lib.add([media], workers=0)
        assert report.added == 8  # 6 images + 2 notes
        assert report.failed == 1 and "broken.jpg" in report.failures[0].path
        # text -> image
        assert names(lib.search("red", k=3))[0] == "00_red.png"
        assert names(lib.search("something blue", k=1)) == ["02_blue.png"]
        # image -> image
        query = tmp_path / "q.png"
        solid("purple", (50, 40)).save(query)
        assert names(lib.search(image=str(query), k=1)) == ["04_purple.png"]
        # image -> text: captions and text files
        hits = lib.search(image=solid("blue"), modality="text", k=3)
        assert {"02_blue.png", "sea.md"} == set(names(hits)[:2])
        caption_hit = next(h for h in hits if h.path.endswith("02_blue.png"))
        assert caption_hit.segments[0].kind == "caption"
        assert "blue sky" in (caption_hit.segments[0].text or "")
        # text -> text
        assert names(lib.search("yellow", modality="text", k=1)) == ["fruit.txt"]


def test_weighted_and_negative_parts(tmp_path: Path, media: Path, encoder: ColourEncoder) -> None:
    with Library.open(tmp_path / "lib", encoder=encoder) as lib:
        lib.add([media], workers=0)
        hits = lib.search('"2:red" + "orange" - "green"', k=2, modality="image")
        assert names(hits) == ["00_red.png", "05_orange.png"]
        query = tmp_path / "y.png"
        solid("yellow").save(query)
        mixed = lib.search(f'"red" + {query}', k=2)
        assert set(names(mixed)) == {"00_red.png", "03_yellow.png"}
        with pytest.raises(QueryError):
            lib.search('"red" - "red"')


def test_filters(tmp_path: Path, media: Path, encoder: ColourEncoder) -> None:
    old = time.mktime((2020, 6, 1, 12, 0, 0, 0, 0, -1))
    os.utime(media / "photos" / "01_green.png", (old, old))
    with Library.open(tmp_path / "lib", encoder=encoder) as lib:
        lib.add([media], workers=0)
        assert names(lib.search("red", filters={"colour": "blue"})) == ["02_blue.png"]
        cheap = lib.search("red", k=10, filters={"price": {"lte": 12}})
        assert set(names(cheap)) == {"00_red.png", "01_green.png", "03_yellow.png"}
        assert set(names(lib.search("red", filters={"price": [10, 20]}))) == {
            "01_green.png",
            "02_blue.png",
            "05_orange.png",
        }
        assert names(lib.search("red", filters={"date_to": "2021-01-01"})) == ["01_green.png"]
        assert "01_green.png" not in names(lib.search("green", filters={"date_from": "2021-01-01"}))
        notes = lib.search("blue", modality="text", filters={"path_prefix": media / "notes"})
        assert set(names(notes)) == {"sea.md", "fruit.txt"}
        assert lib.search("red", filters={"colour": "no-such"}) == []


def test_selective_filter_still_returns_k(tmp_path: Path, encoder: ColourEncoder) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(60):
        solid("red" if i % 20 else "blue").save(root / f"{i:03d}.png")
        (root / f"{i:03d}.json").write_text(json.dumps({"n": i}))
    with Library.open(tmp_path / "lib", encoder=encoder) as lib:
        lib.add([root], workers=0)
        hits = lib.search("blue", k=5, filters={"n": {"gte": 10, "lte": 14}})
        assert sorted(names(hits)) == [f"{i:03d}.png" for i in range(10, 15)]


def test_incremental_reindex(tmp_path: Path, media: Path) -> None:
    enc = ColourEncoder()
    lib = Library.open(tmp_path / "lib", encoder=enc)
    lib.add([media], workers=0)
    calls = enc.text_calls
    again = lib.add([media], workers=0)
    assert (again.added, again.updated, again.unchanged, again.previously_failed) == (0, 0, 8, 1)
    assert enc.text_calls == calls  # nothing re-embedded
    photos = media / "photos"
    os.utime(photos / "00_red.png", (time.time() + 5, time.time() + 5))  # touched, same content
    solid("black").save(photos / "03_yellow.png")  # changed content
    (photos / "04_purple.png").rename(photos / "moved_purple.png")
    (photos / "04_purple.json").rename(photos / "moved_purple.json")
    (photos / "05_orange.png").unlink()
    r = lib.add([media], workers=0)
    assert (r.updated, r.moved, r.removed) == (1, 1, 1)
    assert names(lib.search("black", k=1)) == ["03_yellow.png"]
    assert names(lib.search("purple", k=1)) == ["moved_purple.png"]
    assert "05_orange.png" not in names(lib.search("orange", k=10))
    assert lib.info()["items"] == 7
    lib.close()


def test_caption_change_reembeds(tmp_path: Path, media: Path, encoder: ColourEncoder) -> None:
    with Library.open(tmp_path / "lib", encoder=encoder) as lib:
        lib.add([media], workers=0)
        (media / "photos" / "02_blue.txt").write_text("a green field")
        os.utime(media / "photos" / "02_blue.txt", (time.time() + 5, time.time() + 5))
        assert lib.add([media], workers=0).updated == 1
        top = lib.search("green", modality="text", k=1)[0]
        assert top.segments[0].text == "a green field"


def test_remove_info_persistence(tmp_path: Path, media: Path, encoder: ColourEncoder) -> None:
    with Library.open(tmp_path / "lib", encoder=encoder) as lib:
        lib.add([media], workers=0)
        red = lib.search("red", k=1)[0]
        assert lib.remove([red.item_id]) == 1
        assert lib.remove([media / "notes"]) == 2
        info = lib.info()
        assert info["items"] == 5 and info["indexes"]["image"]["size"] == 5
        assert info["failures"] == 1
    # Reopen: index files load, results identical; then lose the index files entirely.
    with Library.open(tmp_path / "lib", encoder=encoder) as lib:
        first = names(lib.search("blue", k=5))
    for f in (tmp_path / "lib" / "index").iterdir():
        f.unlink()
    with Library.open(tmp_path / "lib", encoder=encoder) as lib:
        assert names(lib.search("blue", k=5)) == first
        assert "00_red.png" not in first


def test_readonly_open_uses_recorded_model(
    tmp_path: Path, media: Path, encoder: ColourEncoder
) -> None:
    with Library.open(tmp_path / "lib", encoder=encoder) as lib:
        lib.add([media], workers=0)
    with Library.open(tmp_path / "lib", encoder=encoder, readonly=True) as ro:
        assert names(ro.search("green", k=1)) == ["01_green.png"]
        with pytest.raises(mmsearch.errors.LibraryError):
            ro.add([media])


def test_refuses_other_model(tmp_path: Path, media: Path) -> None:
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        lib.add([media], workers=0)
    with pytest.raises(ModelMismatchError, match="cannot be mixed"):
        Library.open(tmp_path / "lib", encoder=ColourEncoder(model_id="test/other"))


def test_worker_processes_match_in_process(tmp_path: Path, encoder: ColourEncoder) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    for i, c in enumerate(["red", "green", "blue", "yellow"] * 5):
        solid(c, (20 + i, 30)).save(root / f"{i:02d}_{c}.png")
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with (
        Library.open(tmp_path / "a", encoder=encoder) as a,
        Library.open(tmp_path / "b", encoder=encoder) as b,
    ):
        ra = a.add([root], workers=2, batch_size=4)
        rb = b.add([root], workers=0, batch_size=4)
        assert (ra.added, ra.failed) == (rb.added, rb.failed) == (20, 1)
        va = a.catalog.item_vectors(a.search("blue", k=1)[0].item_id, 1)
        vb = b.catalog.item_vectors(b.search("blue", k=1)[0].item_id, 1)
        np.testing.assert_allclose(va, vb, atol=1e-6)


def test_like_item_and_json(tmp_path: Path, media: Path, encoder: ColourEncoder) -> None:
    with Library.open(tmp_path / "lib", encoder=encoder) as lib:
        lib.add([media], workers=0, metadata={"album": "summer"})
        red = lib.search("red", k=1)[0]
        similar = lib.search(like=red.item_id, k=3)
        assert red.item_id not in [h.item_id for h in similar]
        d = similar[0].to_dict()
        assert json.loads(json.dumps(d))["metadata"]["album"] == "summer"
        assert len(lib.search("red", filters={"album": "summer"}, k=20, modality="image")) == 6


def test_reembed_switches_model_and_resumes(tmp_path, media) -> None:  # type: ignore[no-untyped-def]
    from mmsearch.library import REEMBED_META_KEY

    from fakes import ColourEncoder

    lib_path = tmp_path / "lib"
    with Library.open(lib_path, encoder=ColourEncoder()) as lib:
        lib.add([media])
        before = {it.path for it in lib.catalog.iter_items()}
        old_fp = lib.space["fingerprint"]
    new = ColourEncoder(model_id="test/colour-v2")
    with Library.open(lib_path) as lib:  # the old model is not even loaded
        report = lib.reembed(encoder=new)
        assert report.updated == len(before) and not report.failed
        assert lib.space["fingerprint"] != old_fp
        assert {it.path for it in lib.catalog.iter_items()} == before
        assert lib.catalog.get_meta(REEMBED_META_KEY) == "0"
        assert lib.search("red", k=1)[0].path.endswith("00_red.png")
    # A resumed re-embed (same model, marker still set) redoes only what is left.
    with Library.open(lib_path, encoder=new) as lib:
        first = min(it.id for it in lib.catalog.iter_items())
        lib.catalog.set_meta(REEMBED_META_KEY, str(first))
        report = lib.reembed(encoder=new)
        assert report.updated == 1
