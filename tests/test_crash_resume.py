"""SIGKILL in the middle of an ingest loses nothing committed; the next run resumes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from mmsearch.library import Library

from fakes import ColourEncoder, solid

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from fakes import ColourEncoder
    from mmsearch.library import Library
    lib = Library.open({lib!r}, encoder=ColourEncoder(delay_s=0.05))
    lib.add([{media!r}], workers=0, batch_size=4)
    """
)


def _committed(catalog: Path) -> int:
    try:
        with sqlite3.connect(catalog, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_ingest_then_resume(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    colours = ["red", "green", "blue", "yellow", "purple", "orange"]
    for i in range(60):
        solid(colours[i % 6]).save(media / f"{i:03d}_{colours[i % 6]}.png")
    lib_dir = tmp_path / "lib"
    code = SCRIPT.format(tests=str(Path(__file__).parent), lib=str(lib_dir), media=str(media))
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while time.time() < deadline and _committed(lib_dir / "catalog.sqlite") < 12:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = _committed(lib_dir / "catalog.sqlite")
    assert 12 <= committed < 60, committed

    enc = ColourEncoder()
    with Library.open(lib_dir, encoder=enc) as lib:
        # The index caught up from the journal: every committed vector is searchable.
        assert lib.info()["indexes"]["image"]["size"] == committed
        report = lib.add([media], workers=0)
        assert report.unchanged == committed  # committed work is not redone
        assert report.added == 60 - committed
        assert lib.info()["items"] == 60
        assert lib.info()["indexes"]["image"]["size"] == 60
        hits = lib.search("purple", k=10)
        assert all("purple" in h.path for h in hits)


def test_a_long_lived_reader_sees_commits_after_a_writers_checkpoint(tmp_path, media) -> None:  # type: ignore[no-untyped-def]
    """A writer saves its index and trims the journal; an open reader must still catch up."""
    import shutil

    from mmsearch.library import Library

    from fakes import ColourEncoder, solid

    lib_path = tmp_path / "lib"
    with Library.open(lib_path, encoder=ColourEncoder()) as lib:
        lib.add([media])
    reader = Library.open(lib_path, encoder=ColourEncoder(), readonly=True)
    try:
        assert reader.search("red", k=1)[0].path.endswith("00_red.png")
        more = tmp_path / "more"
        more.mkdir()
        solid("white").save(more / "white.png")
        with Library.open(lib_path, encoder=ColourEncoder()) as writer:
            writer.add([more])  # commits, checkpoints the index files, trims the journal
        assert writer.catalog is not None
        hit = reader.search("white", k=1)[0]
        assert hit.path.endswith("white.png")
        shutil.rmtree(more)
    finally:
        reader.close()
