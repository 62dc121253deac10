"""Contract tests for the vector index layer, run over every kind (flat, hnsw, ivfpq), and planner tests."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

from mmsearch.errors import LibraryError
from mmsearch.index import FaissIndex, IndexSpec, VectorIndex, choose_spec, needs_rebuild
from mmsearch.index.planner import hnsw_bytes

DIM = 32
N = 20_000
SPECS = {
    "flat": IndexSpec("flat", {}),
    "hnsw": IndexSpec("hnsw", {"M": 16, "ef_construction": 64, "ef_search": 64}),
    "ivfpq": IndexSpec("ivfpq", {"nlist": 32, "m": 16, "nbits": 8, "nprobe": 8}),
}
KINDS = list(SPECS)


@pytest.fixture(scope="module", autouse=True)
def _one_faiss_thread() -> Iterator[None]:
    # The test machine's cores are shared; OpenMP spinning on busy cores is slower than one thread.
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def clustered(n: int, dim: int = DIM, centres: int = 200, noise: float = 0.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + noise * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


VECS = clustered(N)
IDS = np.arange(N, dtype=np.int64) * 3 + 1000  # caller ids are not positions


def build(kind: str, n: int = N) -> FaissIndex:
    index = FaissIndex(SPECS[kind], DIM)
    index.train(VECS, sample=4096)  # IVF-PQ: train on the whole distribution even for small n
    index.add(IDS[:n], VECS[:n])
    return index


@pytest.fixture(scope="module")
def shared() -> dict[str, FaissIndex]:
    """One read-only 20k index per kind (tests that mutate build their own)."""
    return {kind: build(kind) for kind in KINDS}


def exact_top(queries: np.ndarray, base: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :k]


# -- contract, every kind ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_exact_copies_find_themselves(shared: dict[str, FaissIndex], kind: str) -> None:
    index = shared[kind]
    assert isinstance(index, VectorIndex)
    assert len(index) == N and index.dim == DIM
    scores, ids = index.search(VECS[:300], 10)
    assert scores.shape == ids.shape == (300, 10)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    top1 = (ids[:, 0] == IDS[:300]).mean()
    in10 = (ids == IDS[:300, None]).any(axis=1).mean()
    if kind == "ivfpq":  # PQ scores are approximate: a near-duplicate may tie or edge ahead
        assert top1 >= 0.85 and in10 >= 0.97
    else:
        assert top1 == 1.0
        np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_selective_filter_returns_exactly_the_allowed(
    shared: dict[str, FaissIndex], kind: str
) -> None:
    index = shared[kind]
    rng = np.random.default_rng(1)
    five = IDS[rng.choice(N, 5, replace=False)]
    scores, ids = index.search(VECS[:20], 10, allowed=five)
    for row, srow in zip(ids, scores, strict=True):
        assert sorted(row[:5]) == sorted(five)
        assert np.all(row[5:] == -1) and np.all(np.isneginf(srow[5:]))
        assert np.all(np.isfinite(srow[:5]))

    fifty = IDS[rng.choice(N, 50, replace=False)]
    scores, ids = index.search(VECS[:20], 10, allowed=fifty)
    assert np.all(np.isin(ids, fifty)) and np.all(ids >= 0)
    if kind != "ivfpq":  # exact scores over the allowed set: the true filtered top-10
        base = VECS[(fifty - 1000) // 3]
        truth = fifty[exact_top(VECS[:20], base, 10)]
        assert (ids == truth).all()


@pytest.mark.parametrize("kind", KINDS)
def test_broad_filter_uses_the_index_and_stays_inside(
    shared: dict[str, FaissIndex], kind: str
) -> None:
    index = shared[kind]
    half = IDS[::2]  # 10k allowed: no up-front exact scan for hnsw/ivfpq
    _, ids = index.search(VECS[:50], 10, allowed=half)
    assert np.all(np.isin(ids, half)) and np.all(ids >= 0)
    # Unknown and duplicate allowed ids are harmless.
    _, ids = index.search(VECS[:5], 3, allowed=np.array([IDS[7], IDS[7], 999_999_999]))
    assert np.all(ids[:, 0] == IDS[7]) and np.all(ids[:, 1:] == -1)
    _, ids = index.search(VECS[:2], 3, allowed=np.array([], np.int64))
    assert np.all(ids == -1)


@pytest.mark.parametrize("kind", KINDS)
def test_removed_ids_never_return_also_after_reload(tmp_path: Path, kind: str) -> None:
    n = 4000
    index = build(kind, n)
    gone = IDS[:n:2]
    assert index.remove(np.concatenate([gone, [5, 6]])) == gone.size  # unknown ids ignored
    assert index.remove(gone) == 0
    assert len(index) == n - gone.size
    assert not np.isin(index.ids(), gone).any()
    if kind == "hnsw":
        assert index.tombstone_ratio == pytest.approx(0.5)
    else:
        assert index.tombstone_ratio == 0.0

    def check(ix: FaissIndex) -> None:
        _, ids = ix.search(VECS[:200], 20)
        assert not np.isin(ids, gone).any()
        _, ids = ix.search(VECS[:200], 20, allowed=IDS[:50])  # allowed includes removed ids
        assert not np.isin(ids, gone).any()
        assert np.isin(ids[ids >= 0], IDS[1:50:2]).all() and (ids >= 0).sum(axis=1).min() == 20

    check(index)
    index.save(tmp_path / "ix")
    check(FaissIndex.load(tmp_path / "ix"))
    check(FaissIndex.load(tmp_path / "ix", mmap=True))


@pytest.mark.parametrize("kind", KINDS)
def test_readding_an_id_replaces_its_vector(kind: str) -> None:
    n = 3000
    index = build(kind, n)
    target, new_vec = IDS[10], VECS[N - 1]  # VECS[N-1] is not in this index
    index.add(np.array([target]), new_vec[None, :])
    assert len(index) == n
    assert (index.ids() == target).sum() == 1
    _, ids = index.search(new_vec[None, :], 5)
    assert target in ids[0]
    scores, ids = index.search(VECS[10][None, :], 5)  # the old vector no longer answers to it
    assert not ((ids[0] == target) & (scores[0] > 0.95)).any()
    # Duplicates inside one call: the last one wins.
    index.add(np.array([IDS[20], IDS[20]]), np.stack([VECS[N - 2], VECS[N - 3]]))
    assert len(index) == n
    _, ids = index.search(VECS[N - 3][None, :], 3)
    assert IDS[20] in ids[0]


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_and_mmap_search_the_same(
    shared: dict[str, FaissIndex], tmp_path: Path, kind: str
) -> None:
    index = shared[kind]
    path = tmp_path / "sub" / f"{kind}.mms-index"
    index.save(path)
    before = index.search(VECS[:100], 10)
    for mmap in (False, True):
        loaded = FaissIndex.load(path, mmap=mmap)
        assert loaded.spec == index.spec and len(loaded) == N
        assert loaded.mmapped is mmap
        after = loaded.search(VECS[:100], 10)
        np.testing.assert_array_equal(before[1], after[1])
        np.testing.assert_allclose(before[0], after[0], rtol=1e-6)
    # A mapped index is copied into memory before it is changed (FAISS would abort).
    loaded.remove(IDS[:3])
    loaded.add(np.array([7]), VECS[5][None, :])
    assert not loaded.mmapped and len(loaded) == N - 2
    # The file is unchanged by edits in memory.
    assert len(FaissIndex.load(path, mmap=True)) == N


def test_save_is_atomic_when_the_commit_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = build("hnsw", 2000)
    path = tmp_path / "ix"
    index.save(path)
    files_before = sorted(p.name for p in tmp_path.iterdir())
    index.remove(IDS[:1000])

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before the commit")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        index.save(path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before
    old = FaissIndex.load(path)
    assert len(old) == 2000

    # Debris of a save killed mid-write (no cleanup ran) is ignored and later swept away.
    (tmp_path / "ix.0123456789ab.faiss").write_bytes(b"half an index")
    assert len(FaissIndex.load(path)) == 2000
    index.save(path)
    assert len(FaissIndex.load(path)) == 1000
    assert sorted(p.name for p in tmp_path.iterdir())[0] == "ix"
    assert len(list(tmp_path.iterdir())) == 3


def test_hnsw_recall_against_exact_on_clustered_data() -> None:
    base = clustered(12_000, 64, centres=300, noise=0.35, seed=3)
    queries = clustered(200, 64, centres=300, noise=0.35, seed=3)  # same centres, new noise
    rng = np.random.default_rng(9)
    queries = queries + 0.05 * rng.standard_normal(queries.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    spec = choose_spec(len(base), 64, exact_threshold=10_000)
    assert spec.kind == "hnsw"
    index = FaissIndex.build(spec, np.arange(len(base)), base)
    _, ids = index.search(queries, 10)
    truth = exact_top(queries, base, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)])
    assert recall >= 0.95


def test_hnsw_compact_drops_tombstones() -> None:
    index = build("hnsw", 3000)
    index.remove(IDS[:1000])
    before = index.search(VECS[1000:1100], 5)[1]
    index.compact()
    assert index.tombstone_ratio == 0.0 and len(index) == 2000
    after = index.search(VECS[1000:1100], 5)[1]
    assert (before[:, 0] == after[:, 0]).all()
    assert not np.isin(after, IDS[:1000]).any()


def test_edge_cases_and_errors(tmp_path: Path) -> None:
    empty = FaissIndex(SPECS["flat"], DIM)
    scores, ids = empty.search(VECS[:3], 4)
    assert (ids == -1).all() and np.isneginf(scores).all()
    small = FaissIndex.build(SPECS["hnsw"], IDS[:3], VECS[:3])
    _, ids = small.search(VECS[0], 5)  # 1-D query, k > n
    assert (
        ids.shape == (1, 5) and sorted(ids[0, :3]) == sorted(IDS[:3]) and (ids[0, 3:] == -1).all()
    )
    assert small.search(VECS[:2], 0)[1].shape == (2, 0)
    with pytest.raises(ValueError, match="shape"):
        small.search(np.zeros((1, DIM + 1), np.float32), 3)
    with pytest.raises(ValueError, match="non-negative"):
        small.add(np.array([-1]), VECS[:1])
    with pytest.raises(ValueError, match="ids for"):
        small.add(IDS[:2], VECS[:3])
    untrained = FaissIndex(SPECS["ivfpq"], DIM)
    with pytest.raises(ValueError, match="needs at least"):
        untrained.add(IDS[:10], VECS[:10])
    with pytest.raises(ValueError, match="divide"):
        FaissIndex(IndexSpec("ivfpq", {"nlist": 8, "m": 5, "nbits": 8, "nprobe": 2}), DIM)
    with pytest.raises(ValueError, match="missing"):
        IndexSpec("hnsw", {"M": 16})
    with pytest.raises(LibraryError, match="no index"):
        FaissIndex.load(tmp_path / "missing")
    small.save(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix").read_text())
    ids_file = tmp_path / manifest["ids_file"]
    good_ids = ids_file.read_bytes()
    ids_file.write_bytes(good_ids[:40])
    with pytest.raises(LibraryError, match="damaged"):
        FaissIndex.load(tmp_path / "ix")
    ids_file.write_bytes(good_ids)
    assert len(FaissIndex.load(tmp_path / "ix")) == 3
    # Flipped bytes inside the FAISS file itself are caught by its checksum too.
    faiss_file = tmp_path / manifest["index_file"]
    good_faiss = bytearray(faiss_file.read_bytes())
    bad = bytearray(good_faiss)
    bad[len(bad) // 2] ^= 0xFF
    faiss_file.write_bytes(bytes(bad))
    with pytest.raises(LibraryError, match="damaged"):
        FaissIndex.load(tmp_path / "ix")
    faiss_file.write_bytes(bytes(good_faiss))
    assert len(FaissIndex.load(tmp_path / "ix")) == 3
    manifest["version"] = 99
    (tmp_path / "ix").write_text(json.dumps(manifest))
    with pytest.raises(LibraryError, match="upgrade"):
        FaissIndex.load(tmp_path / "ix")


def test_tune_changes_default_effort_and_is_saved(tmp_path: Path) -> None:
    index = build("hnsw", 2000)
    index.tune(ef_search=200)
    assert index.spec.params["ef_search"] == 200
    index.save(tmp_path / "ix")
    assert FaissIndex.load(tmp_path / "ix").spec.params["ef_search"] == 200


# -- planner ---------------------------------------------------------------------


def test_planner_picks_by_size_and_budget() -> None:
    assert choose_spec(0, 512).kind == "flat"
    assert choose_spec(49_999, 512).kind == "flat"
    spec = choose_spec(1_000_000, 384)
    assert spec.kind == "hnsw" and spec.params["M"] == 32 and spec.params["ef_search"] >= 64
    assert (
        choose_spec(1_000_000, 384, memory_budget_bytes=hnsw_bytes(1_000_000, 384)).kind == "hnsw"
    )
    low = choose_spec(1_000_000, 384, memory_budget_bytes=200 * 2**20)
    assert low.kind == "ivfpq"
    assert low.params["nlist"] == 4096 and 384 % low.params["m"] == 0
    assert 384 // low.params["m"] >= 4 and low.params["nprobe"] <= low.params["nlist"]
    tighter = choose_spec(1_000_000, 384, memory_budget_bytes=60 * 2**20)
    assert tighter.params["m"] < low.params["m"]
    assert choose_spec(100_000, 512, exact_threshold=200_000).kind == "flat"
    mid = choose_spec(60_000, 512, memory_budget_bytes=1)
    assert mid.kind == "ivfpq" and mid.params["nlist"] * 39 <= 60_000


def test_needs_rebuild_with_hysteresis() -> None:
    flat, hnsw = choose_spec(10, 384), choose_spec(100_000, 384)
    assert not needs_rebuild(flat, 49_999, 384)
    assert needs_rebuild(flat, 50_000, 384)
    assert not needs_rebuild(hnsw, 40_000, 384)  # shrank a little: keep it
    assert needs_rebuild(hnsw, 20_000, 384)
    assert not needs_rebuild(hnsw, 5_000_000, 384)
    assert needs_rebuild(hnsw, 1_000_000, 384, budget=100 * 2**20)  # no longer fits
    ivf = choose_spec(1_000_000, 384, memory_budget_bytes=100 * 2**20)
    assert not needs_rebuild(ivf, 1_500_000, 384, budget=150 * 2**20)
    assert needs_rebuild(ivf, 8_000_000, 384, budget=2**30)  # nlist should grow
    assert needs_rebuild(ivf, 1_000_000, 384)  # budget lifted: HNSW fits
