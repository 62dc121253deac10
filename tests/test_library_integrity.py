"""No silent wrong results (issue #9): damaged or stale index files, an unfinished
re-embed, failures that are never retried, transient errors recorded as permanent."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmsearch.library import Library
from mmsearch.media.discover import Discovered

from fakes import ColourEncoder, ToneEncoder, solid
from media_gen import make_audio

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]


def photos(root: Path, n: int, start: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        solid(COLOURS[i % len(COLOURS)], (24 + i % 7, 24)).save(root / f"{i:04d}.png")
    return root


def newest_faiss(lib: Path) -> Path:
    manifests = sorted((lib / "index").glob("*-image.*.index"), key=os.path.getmtime)
    assert manifests, "no saved index"
    return lib / "index" / json.loads(manifests[-1].read_text())["index_file"]


def top(lib: Library, colour: str) -> tuple[str, float]:
    hit = lib.search(colour, k=1)[0]
    return hit.path, hit.score


def test_flipped_bytes_in_an_index_file_are_caught_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    media = photos(tmp_path / "media", 40)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        lib.add(media, workers=0)
        want = top(lib, "green")
    data = bytearray(newest_faiss(tmp_path / "lib").read_bytes())
    for pos in range(len(data) // 3, len(data) - 64, 97):  # vectors, not just the header
        data[pos] ^= 0x5A
    newest_faiss(tmp_path / "lib").write_bytes(bytes(data))
    with (
        caplog.at_level(logging.WARNING, "mmsearch"),
        Library.open(tmp_path / "lib", encoder=ColourEncoder(), readonly=True) as lib,
    ):
        hits = lib.search("green", k=40)
        assert (hits[0].path, hits[0].score) == want
        assert all(-1.0001 <= h.score <= 1.0001 for h in hits) and len(hits) == 40
    assert any("checksum" in r.getMessage() for r in caplog.records)
    # The next run writes a sound file again: no warning afterwards.
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        assert lib.add(media, workers=0).unchanged == 40
    caplog.clear()
    with (
        caplog.at_level(logging.WARNING, "mmsearch"),
        Library.open(tmp_path / "lib", encoder=ColourEncoder(), readonly=True) as lib,
    ):
        assert top(lib, "green") == want
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_index_files_of_another_catalog_are_never_trusted(tmp_path: Path) -> None:
    big = photos(tmp_path / "media", 120)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        lib.add(big, workers=0)
    for f in (tmp_path / "lib").glob("catalog.sqlite*"):
        f.unlink()  # the catalog is lost; its index files stay behind
    small = tmp_path / "small"
    small.mkdir()
    for p in sorted(big.glob("*.png"))[::3][:30]:
        shutil.copy(p, small / p.name)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        assert lib.add(small, workers=0).added == 30
    with Library.open(tmp_path / "lib", encoder=ColourEncoder(), readonly=True) as lib:
        info = lib.info()
        assert info["items"] == 30 and info["indexes"]["image"]["size"] == 30
        for colour in ("red", "blue"):
            hits = lib.search(colour, k=60)
            assert len(hits) == 30 and all(h.path.startswith(str(small)) for h in hits)
            assert all(h.score <= 1.0001 for h in hits)
            assert int(Path(hits[0].path).stem) % len(COLOURS) == COLOURS.index(colour)


def test_a_catalog_that_lost_its_last_commits_rebuilds_newer_index_files(tmp_path: Path) -> None:
    media = photos(tmp_path / "media", 20)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        lib.add(media, workers=0)
    saved = tmp_path / "catalog-before"
    shutil.copy(tmp_path / "lib" / "catalog.sqlite", saved)  # closed: WAL checkpointed
    photos(media, 20, start=20)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        assert lib.add(media, workers=0).added == 20
    for f in (tmp_path / "lib").glob("catalog.sqlite*"):
        f.unlink()
    shutil.copy(saved, tmp_path / "lib" / "catalog.sqlite")  # as if its WAL had been lost
    with Library.open(tmp_path / "lib", encoder=ColourEncoder(), readonly=True) as lib:
        info = lib.info()
        assert info["items"] == 20 and info["indexes"]["image"]["size"] == 20
        hits = lib.search("red", k=40)
        assert len(hits) == 20 and all(int(Path(h.path).stem) < 20 for h in hits)


def test_an_unfinished_reembed_shows_in_info_and_the_next_index_finishes_it(
    tmp_path: Path,
) -> None:
    media = photos(tmp_path / "media", 30)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        lib.add(media, workers=0)
    new = ColourEncoder(model_id="test/colour-v2")
    calls = 0

    def interrupt(done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt

    from mmsearch.ingest.pipeline import IngestOptions

    with Library.open(tmp_path / "lib") as lib, pytest.raises(KeyboardInterrupt):
        lib.reembed(encoder=new, options=IngestOptions(batch_size=8, on_progress=interrupt))
    with Library.open(tmp_path / "lib", encoder=new, readonly=True) as lib:
        info = lib.info()
        assert info["reembed_pending"].startswith("14 item(s)")
        assert info["indexes"]["image"]["size"] == 16  # 14 photos are not searchable yet
    with Library.open(tmp_path / "lib", encoder=new) as lib:
        report = lib.add(media, workers=0)
        assert report.reembed_pending == 0
        assert "reembed_pending" not in lib.info()
        assert lib.info()["indexes"]["image"]["size"] == 30
        assert len(lib.search("red", k=40)) == 30  # every photo is searchable again


def test_failures_are_retried_when_the_models_change_or_when_asked(tmp_path: Path) -> None:
    media = tmp_path / "media"
    photos(media, 2)
    make_audio(media / "hum.wav", [(440.0, 2.0)])
    (media / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        first = lib.add(media, workers=0)
        assert {os.path.basename(f.path) for f in first.failures} == {"hum.wav", "bad.png"}
        again = lib.add(media, workers=0)
        assert again.previously_failed == 2 and again.failed == 0
        from mmsearch.ingest.pipeline import IngestOptions

        retried = lib.add(media, options=IngestOptions(workers=0, retry_failed=True))
        assert retried.previously_failed == 0 and retried.failed == 2
    # The audio file was refused for want of an audio model: adding one clears the record.
    with Library.open(
        tmp_path / "lib", encoder=ColourEncoder(), audio_encoder=ToneEncoder()
    ) as lib:
        report = lib.add(media, workers=0)
        assert report.added == 1 and report.previously_failed == 0
        assert [os.path.basename(f.path) for f in report.failures] == ["bad.png"]


def test_transient_errors_are_reported_but_not_recorded(tmp_path: Path) -> None:
    media = photos(tmp_path / "media", 6)

    class OutOfMemoryError(RuntimeError):
        """What torch raises when CUDA runs out of memory."""

    class Flaky(ColourEncoder):
        fail = True

        def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
            if self.fail:
                raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().encode_pixels(pixels)

    enc = Flaky()
    with Library.open(tmp_path / "lib", encoder=enc) as lib:
        report = lib.add(media, workers=0)
        assert report.added == 0 and report.failed == 6
        assert all("temporary" in f.reason for f in report.failures)
        assert lib.failures() == []  # nothing recorded against the files
        enc.fail = False
        assert lib.add(media, workers=0).added == 6


def test_a_plain_string_is_one_path(tmp_path: Path) -> None:
    media = photos(tmp_path / "media", 4)
    other = photos(tmp_path / "other", 3)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        assert lib.add(str(media), workers=0).added == 4
        assert lib.add(other, workers=0).added == 3  # a Path too
        assert lib.remove(str(other)) == 3
        assert lib.info()["items"] == 4
        assert lib.remove(str(media / "0001.png")) == 1 and lib.info()["items"] == 3
        item = next(iter(lib.catalog.iter_items()))
        assert lib.remove(item.id) == 1 and lib.info()["items"] == 2


def test_discovered_records_the_file_identity(tmp_path: Path) -> None:
    media = photos(tmp_path / "media", 1)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        lib.add(media, workers=0)
        item = next(iter(lib.catalog.iter_items()))
    st = os.stat(media / "0000.png")
    assert (item.dev, item.ino) == (st.st_dev, st.st_ino)
    assert Discovered.__dataclass_fields__["dev"].default is None


def test_reembed_leaves_the_callers_options_alone(tmp_path: Path) -> None:
    from mmsearch.ingest.pipeline import IngestOptions

    media = photos(tmp_path / "media", 3)
    with Library.open(tmp_path / "lib", encoder=ColourEncoder()) as lib:
        lib.add(media, workers=0)
        opts = IngestOptions(workers=0)
        lib.reembed(encoder=ColourEncoder(model_id="test/colour-v2"), options=opts)
        assert opts == IngestOptions(workers=0)


def test_a_catalog_that_cannot_be_opened_leaves_no_connection_open(tmp_path: Path) -> None:
    import sqlite3

    from mmsearch.errors import LibraryError
    from mmsearch.store.catalog import Catalog

    path = tmp_path / "catalog.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")  # written by a newer mmsearch
    conn.close()

    def open_fds() -> int:
        return sum(
            1
            for fd in os.listdir("/proc/self/fd")
            if os.path.realpath(f"/proc/self/fd/{fd}").startswith(str(path))
        )

    before = open_fds()
    for _ in range(3):
        with pytest.raises(LibraryError, match="newer"):
            Catalog.open(path)
    assert open_fds() == before == 0
