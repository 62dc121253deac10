"""``mmsearch search`` over all the evidence: default hybrid, fusion, weights, cut-off,
feedback, reranking, near-copies, and each hit's evidence with the query's words marked.

One library (``cli_corpus``): shape photos, red circles and blue squares, a resized copy
of a photo, three notes, and a video whose subtitle says a phrase no picture shows.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cli_support import MMSEARCH, one_error_line, run

from cli_corpus import Corpus, build


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build(tmp_path_factory.mktemp("cli_fusion"))


def search(capsys: pytest.CaptureFixture[str], c: Corpus, *argv: str) -> tuple[int, str, str]:
    return run(capsys, "search", *argv, "--library", c.library)


def search_json(
    capsys: pytest.CaptureFixture[str], c: Corpus, *argv: str, status: int = 0
) -> dict[str, Any]:
    code, out, err = search(capsys, c, *argv, "--json")
    assert code == status, err
    payload: dict[str, Any] = json.loads(out)
    return payload


def names(payload: dict[str, Any]) -> list[str]:
    return [Path(h["path"]).name for h in payload["hits"]]


def test_a_text_query_searches_all_the_evidence_by_default(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    res = search_json(capsys, corpus, "a red circle", "-k", "4")
    assert res["mode"] == "hybrid" and res["fusion"] == "calibrated"
    # The note that says it, found by meaning and by its words, then the pictures.
    assert names(res) == ["circle.txt", "red2.png", "red1.png", "red0.png"]
    assert {"main/text", "lexical"} <= {e["source"] for e in res["hits"][0]["evidence"]}
    assert all(h["score"] > 0.99 for h in res["hits"])
    # The subtitle says a phrase no picture shows: the video is found, at the cue.
    res = search_json(capsys, corpus, "zanzibar lighthouse", "-k", "3")
    top = res["hits"][0]
    assert names(res)[0] == "trip.mp4"
    assert (top["segments"][0]["t_start"], top["segments"][0]["t_end"]) == (5.0, 7.0)
    vector = search_json(capsys, corpus, "a red circle", "--mode", "vector", "-k", "4")
    assert vector["mode"] == "vector"
    assert all(e["source"] != "lexical" for h in vector["hits"] for e in h["evidence"])


def test_type_text_returns_the_text_items(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    res = search_json(capsys, corpus, "a red circle", "--type", "text")
    assert names(res)[0] == "circle.txt"
    assert sorted(names(res)) == ["circle.txt", "garden.txt", "note.txt"]
    assert {h["metadata"]["item_modality"] for h in res["hits"]} == {"text"}


def test_human_output_shows_evidence_moments_and_marked_words(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = search(capsys, corpus, "zanzibar lighthouse", "-k", "2")
    assert code == 0
    first = out.split("\n  2. ")[0].splitlines()
    assert first[0].endswith("trip.mp4 @ 00:00:05–00:00:07"), out
    evidence = next(line for line in first if line.strip().startswith("evidence: "))
    assert "lexical 0." in evidence and "main/text " in evidence
    assert "       subtitle: the [zanzibar] [lighthouse] keeper" in first, out
    assert "\x1b" not in out  # not a terminal: brackets, no escape sequences


def test_on_a_terminal_the_matched_words_are_bold(corpus: Corpus) -> None:
    argv = [MMSEARCH, "search", "zanzibar lighthouse", "-k", "1", "--library", corpus.library]
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    out = _run_on_a_terminal(argv, env)
    assert "the \x1b[1mzanzibar\x1b[0m \x1b[1mlighthouse\x1b[0m keeper" in out, out
    assert "[zanzibar]" not in out
    out = _run_on_a_terminal(argv, {**env, "NO_COLOR": "1"})
    assert "[zanzibar] [lighthouse]" in out and "\x1b" not in out


def _run_on_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    """stdout of ``argv`` run with a pseudo-terminal as its stdout."""
    main_fd, child_fd = pty.openpty()
    try:
        proc = subprocess.run(argv, stdout=child_fd, stderr=subprocess.PIPE, env=env, timeout=300)
        os.close(child_fd)
        chunks = []
        while True:
            try:
                data = os.read(main_fd, 65536)
            except OSError:  # the terminal is closed and drained
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(main_fd)
    assert proc.returncode == 0, proc.stderr
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_fusion_rrf_ranks_by_reciprocal_rank(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    res = search_json(capsys, corpus, "a red circle", "--fusion", "rrf", "-k", "8")
    assert res["fusion"] == "rrf" and len(res["hits"]) == 8
    rrf = [h["signals"]["rrf"] for h in res["hits"]]
    assert rrf == sorted(rrf, reverse=True)
    calibrated = search_json(capsys, corpus, "a red circle", "-k", "8")
    evidence = [h["signals"]["evidence"] for h in calibrated["hits"]]
    assert evidence == sorted(evidence, reverse=True)


def test_weight_changes_what_a_source_counts(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    def lexical(payload: dict[str, Any]) -> dict[str, Any]:
        trip = next(h for h in payload["hits"] if h["path"].endswith("trip.mp4"))
        found: dict[str, Any] = next(e for e in trip["evidence"] if e["source"] == "lexical")
        return found

    plain = search_json(capsys, corpus, "zanzibar lighthouse", "-k", "3")
    double = search_json(capsys, corpus, "zanzibar lighthouse", "-k", "3", "--weight", "lexical=2")
    off = search_json(capsys, corpus, "zanzibar lighthouse", "-k", "3", "--weight", "lexical=0")
    assert lexical(plain)["evidence"] > 0.5
    assert lexical(double)["evidence"] == pytest.approx(2 * lexical(plain)["evidence"])
    assert "evidence" not in lexical(off) or lexical(off)["evidence"] == 0.0


def test_min_score_ends_the_list_where_the_good_matches_end(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    res = search_json(capsys, corpus, "a red circle", "-k", "10", "--min-score", "0.9")
    assert names(res) == ["circle.txt", "red2.png", "red1.png", "red0.png"]
    assert res["note"] is None and res["best_below"] is None


def test_no_confident_match_says_so_and_exits_with_1(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = search(capsys, corpus, "a purple piano", "--min-score", "0.5")
    assert code == 1 and err == ""
    assert out.startswith("no confident match; best was ") and out.count("\n") == 1, out
    assert "(score 0.0" in out
    res = search_json(capsys, corpus, "a purple piano", "--min-score", "0.5", status=1)
    assert res["hits"] == [] and res["note"].startswith("no confident match; best was ")
    best = res["best_below"]
    assert best["score"] < 0.5 and best["path"] in res["note"] and best["evidence"]
    code, out, err = search(capsys, corpus, "a purple piano", "--min-score", "0.5", "--paths")
    assert code == 1 and out == "" and err.startswith("mmsearch: no confident match")


def test_like_and_unlike_change_the_results(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = corpus.ids
    # Alone, --like is "more like this": the other red circles, not the item itself.
    like = search_json(capsys, corpus, "--like", str(ids["red0.png"]), "-k", "3")
    assert "red0.png" not in names(like) and {"red1.png", "red2.png"} <= set(names(like))
    # Lists by commas or repeated flags are the same.
    blues = f"{ids['blue0.png']},{ids['blue1.png']}"
    comma = search_json(capsys, corpus, "--like", blues, "-k", "6")
    repeated = search_json(
        capsys, corpus, "--like", str(ids["blue0.png"]), "--like", str(ids["blue1.png"]), "-k", "6"
    )
    assert names(comma) == names(repeated) and comma["like"] == [ids["blue0.png"], ids["blue1.png"]]
    # A disliked item is never shown, and the query moves away from it.
    plain = search_json(capsys, corpus, "a red circle", "-k", "6")
    unlike = search_json(
        capsys, corpus, "a red circle", "--unlike", str(ids["red2.png"]), "-k", "6"
    )
    assert "red2.png" in names(plain) and "red2.png" not in names(unlike)
    assert unlike["unlike"] == [ids["red2.png"]]
    # (Cosines, not scores: a query refined by feedback is calibrated against its own
    # background, not the model's text curve.)
    plain_cos = {Path(h["path"]).name: h["signals"].get("image_cosine") for h in plain["hits"]}
    unlike_cos = {Path(h["path"]).name: h["signals"].get("image_cosine") for h in unlike["hits"]}
    assert unlike_cos["red1.png"] < plain_cos["red1.png"]
    # Liked blue, disliked red: the blue squares come up.
    steer = search_json(
        capsys,
        corpus,
        "--like",
        str(ids["blue0.png"]),
        "--unlike",
        str(ids["red0.png"]),
        "-k",
        "3",
    )
    assert {"blue1.png", "blue2.png"} <= set(names(steer))


def test_near_copies_fold_into_one_hit_unless_asked(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    query = ["--image", str(corpus.media / "photo03.png"), "-k", "3"]
    folded = search_json(capsys, corpus, *query)
    copies = {corpus.ids["photo03.png"], corpus.ids["photo03_big.png"]}
    top = folded["hits"][0]
    assert {top["item_id"], *top["similar"]} == copies
    assert not copies & {h["item_id"] for h in folded["hits"][1:]}
    code, out, _ = search(capsys, corpus, *query)
    assert code == 0 and f"+1 similar: #{top['similar'][0]}" in out
    every = search_json(capsys, corpus, *query, "--no-dedupe")
    assert copies <= {h["item_id"] for h in every["hits"]}
    assert all(h["similar"] == [] for h in every["hits"])


def test_rerank_rescored_hits_show_the_reranker(
    corpus: Corpus, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tiny_rerankers import make_tiny_cross_encoder

    folder = make_tiny_cross_encoder(tmp_path)
    res = search_json(
        capsys, corpus, "zanzibar lighthouse", "--rerank", folder, "--rerank-top", "4", "-k", "6"
    )
    reranked = [h for h in res["hits"] if "rerank" in h["signals"]]
    assert reranked and all(h["evidence"][0]["source"].startswith("rerank:") for h in reranked)
    assert all(h["path"].endswith(".txt") or h["path"].endswith(".mp4") for h in reranked)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["red", "--weight", "audio/speech=1"], ["unknown source 'audio/speech'", "lexical"]),
        (["red", "--weight", "lexical=-1"], ["--weight lexical", "0 or more"]),
        (["red", "--weight", "lexical=lots"], ["--weight lexical", "number", "'lots'"]),
        (["red", "--weight", "lexical"], ["SOURCE=WEIGHT"]),
        (["red", "--like", "12,x"], ["--like", "'x'", "item id"]),
        (["red", "--unlike", ","], ["--unlike", "no item id"]),
        (["red", "--like=-3"], ["--like", "'-3'"]),
        (["red", "--min-score", "1.5"], ["--min-score", "between 0 and 1"]),
        (["red", "--min-score=-0.1"], ["--min-score", "between 0 and 1"]),
        (["red", "--min-score", "nan"], ["--min-score", "finite"]),
        (["red", "-k", "0"], ["-k", "at least 1"]),
        (["red", "--rerank-top", "0"], ["--rerank-top", "at least 1"]),
        (["red", "--rerank", "zzz:nope"], ["zzz"]),
        (["--image", "x.png", "--rerank", "zzz:nope"], ["--rerank", "text"]),
        (["--unlike", "3"], ["disliked items alone"]),
        (["red", "--like", "99999"], ["no item 99999"]),
    ],
)
def test_bad_input_is_one_line(
    corpus: Corpus, capsys: pytest.CaptureFixture[str], argv: list[str], words: list[str]
) -> None:
    code, out, err = search(capsys, corpus, *argv)
    assert code == 2 and out == ""
    line = one_error_line(err)
    for word in words:
        assert word in line, line
