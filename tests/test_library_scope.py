"""What a library takes in and keeps out (issue #9, "Destructive surprises"): removed files
that stay removed, exclusion patterns and .mmsearchignore, sidecars that never turn into
items, and types mmsearch does not index counted as skipped rather than failed."""

from __future__ import annotations

import os
from pathlib import Path

from mmsearch.library import Library

from fakes import ColourEncoder, solid


def folder(root: Path) -> Path:
    (root / "raw").mkdir(parents=True)
    (root / "trip").mkdir()
    solid("red").save(root / "trip" / "red.png")
    solid("blue").save(root / "trip" / "blue.png")
    (root / "trip" / "blue.txt").write_text("a blue sky")  # the caption of blue.png
    solid("green").save(root / "raw" / "green.png")
    (root / "notes.txt").write_text("shopping list: apples")
    (root / "draft.md").write_text("scratch")
    return root


def names(lib: Library) -> list[str]:
    return sorted(os.path.relpath(i.path, lib_root(lib)) for i in lib.catalog.iter_items())


def lib_root(lib: Library) -> str:
    roots = lib.info()["roots"]
    assert roots
    return str(roots[0])


def test_removed_files_stay_removed_unless_named_or_forgotten(tmp_path: Path) -> None:
    media = folder(tmp_path / "media")
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        lib.add(media, workers=0)
        assert names(lib) == [
            "draft.md",
            "notes.txt",
            "raw/green.png",
            "trip/blue.png",
            "trip/red.png",
        ]
        assert lib.remove(media / "trip" / "red.png") == 1
        assert lib.remove(media / "raw") == 1
        report = lib.add(media, workers=0)  # the scheduled re-index of the parent folder
        assert report.added == 0
        assert names(lib) == ["draft.md", "notes.txt", "trip/blue.png"]
        kept_out = {os.path.relpath(s.path, media): s.stage for s in report.skips}
        assert kept_out == {"trip/red.png": "excluded", "raw": "excluded"}
        # Named on purpose, a removed file comes back.
        assert lib.add(media / "trip" / "red.png", workers=0).added == 1
        assert lib.add(media, workers=0).added == 0  # and stays, with its folder
        assert "trip/red.png" in names(lib)
        # forget=True only drops the item: the next index of its folder adds it again.
        assert lib.remove(media / "notes.txt", forget=True) == 1
        assert lib.add(media, workers=0).added == 1
        assert "notes.txt" in names(lib)


def test_match_targets_says_what_each_target_names(tmp_path: Path) -> None:
    media = folder(tmp_path / "media")
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        lib.add(media, workers=0)
        some = next(iter(lib.catalog.iter_items())).id
        huge = 99999999999999999999999
        matched = dict(lib.match_targets([str(media / "trip"), 999999, huge, some, "/nowhere"]))
        assert len(matched[str(media / "trip")]) == 2
        assert matched[999999] == matched[huge] == matched["/nowhere"] == []
        assert matched[some] == [some]
        assert dict(lib.match_targets(str(media)))[str(media)]  # one string is one target


def test_exclude_patterns_and_ignore_files(tmp_path: Path) -> None:
    media = folder(tmp_path / "media")
    (media / "trip" / ".mmsearchignore").write_text("# no reds here\nred.*\n")
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        lib.exclude(["*.md", "raw/"])
        report = lib.add(media, workers=0)
        assert names(lib) == ["notes.txt", "trip/blue.png"]
        why = {os.path.relpath(s.path, media): s.reason for s in report.skips}
        assert why == {
            "draft.md": "excluded by --exclude",
            "raw": "excluded by --exclude",
            "trip/red.png": "excluded by .mmsearchignore",
        }
        # Excluding what is already indexed takes it out at the next run.
        lib.exclude(["notes.*"])
        assert lib.add(media, workers=0).removed == 1
        assert names(lib) == ["trip/blue.png"]
        assert lib.exclusions()["patterns"] == ["*.md", "raw/", "notes.*"]
        assert lib.unexclude(["raw/"]) == 1
        assert lib.add(media, workers=0).added == 1
        assert "raw/green.png" in names(lib)
        # A deeper ignore file can let back in what a shallower rule keeps out.
        (media / "raw" / "keep.md").write_text("kept")
        (media / "raw" / ".mmsearchignore").write_text("!keep.md\n")
        lib.add(media, workers=0)
        assert "raw/keep.md" in names(lib) and "draft.md" not in names(lib)


def test_a_caption_never_becomes_an_item(tmp_path: Path) -> None:
    media = folder(tmp_path / "media")
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        assert lib.add(media, workers=0).added == 5
        # A new note beside nothing is one item; the report says "1 added".
        (media / "trip" / "note.txt").write_text("remember the ferry")
        assert lib.add(media, workers=0).added == 1
        # A note that gains a photo of the same name becomes its caption, not an item.
        solid("yellow").save(media / "trip" / "note.png")
        report = lib.add(media, workers=0)
        assert (report.added, report.removed) == (1, 1)
        assert "trip/note.txt" not in names(lib)
        hit = lib.search("yellow", k=1)[0]
        assert hit.path.endswith("note.png") and hit.metadata["caption"] == "remember the ferry"
        # The photo is deleted: its caption does not turn into a text item...
        (media / "trip" / "blue.png").unlink()
        report = lib.add(media, workers=0)
        assert (report.added, report.removed) == (0, 1)
        assert "trip/blue.txt" not in names(lib)
        assert [(os.path.basename(s.path), s.stage) for s in report.skips] == [
            ("blue.txt", "excluded")
        ]
        assert lib.add(media, workers=0).added == 0  # ...not at the next run either...
        # ...unless the user indexes it on purpose.
        assert lib.add(media / "trip" / "blue.txt", workers=0).added == 1


def test_types_not_indexed_are_skipped_not_failed(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    solid("red").save(media / "photo.png")
    (media / "report.pdf").write_bytes(b"%PDF-1.7\n" + b"0" * 100)
    (media / "page.html").write_text("<html><body>hi</body></html>")
    (media / "table.csv").write_text("a,b\n1,2\n")
    (media / "photo.xmp").write_text("<x:xmpmeta/>")
    (media / ".cache").mkdir()
    solid("blue").save(media / ".cache" / "thumb.png")
    (media / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        report = lib.add(media, workers=0)
    assert report.added == 1
    assert [os.path.basename(f.path) for f in report.failures] == ["broken.png"]
    skipped = {os.path.basename(s.path): s.reason for s in report.skips}
    assert set(skipped) == {".cache", "report.pdf", "page.html", "table.csv", "photo.xmp"}
    assert skipped[".cache"] == "hidden (name starts with a dot)"
    assert all(r.startswith("unsupported file type") for k, r in skipped.items() if k != ".cache")
    summary = report.to_dict()
    assert summary["failed"] == 1 and summary["skipped"] == 5
    assert summary["skip_reasons"]["hidden (name starts with a dot)"] == 1
    assert len(summary["skipped_files"]) == 5
    assert "5 skipped" in report.summary()
