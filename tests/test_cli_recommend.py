"""``mmsearch recommend``: more like a history of items, never one of them or an excluded
one, with variety (``--diversity``) and recent items weighed more (``--recency``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_support import one_error_line, run

from cli_corpus import Corpus, build

RED = ("red0.png", "red1.png", "red2.png")
BLUE = ("blue0.png", "blue1.png", "blue2.png")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build(tmp_path_factory.mktemp("cli_recommend"))


def recommend(
    capsys: pytest.CaptureFixture[str], c: Corpus, *argv: str, status: int = 0
) -> dict[str, Any]:
    code, out, err = run(capsys, "recommend", *argv, "--library", c.library, "--json")
    assert code == status, err
    payload: dict[str, Any] = json.loads(out)
    return payload


def names(payload: dict[str, Any]) -> list[str]:
    return [Path(h["path"]).name for h in payload["hits"]]


def ids(c: Corpus, *files: str) -> list[str]:
    return [str(c.ids[f]) for f in files]


def test_recommends_like_the_history_and_never_the_history(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    res = recommend(capsys, corpus, *ids(corpus, "red0.png"), "--type", "image", "-k", "3")
    assert res["positive"] == [corpus.ids["red0.png"]]
    assert names(res)[:2] == ["red2.png", "red1.png"]
    blues = recommend(capsys, corpus, ",".join(ids(corpus, "blue0.png", "blue1.png")), "-k", "5")
    assert "blue2.png" in names(blues)
    assert not {"blue0.png", "blue1.png"} & set(names(blues))
    code, out, _ = run(capsys, "recommend", *ids(corpus, "red0.png"), "-l", corpus.library)
    assert code == 0 and "red2.png" in out and "evidence: main/image" in out
    assert "red0.png" not in out


def test_exclude_and_negative_are_honoured(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    red0, red1, red2 = ids(corpus, *RED)
    res = recommend(capsys, corpus, red0, "--exclude", red2, "--type", "image", "-k", "3")
    assert names(res)[0] == "red1.png" and "red2.png" not in names(res)
    res = recommend(capsys, corpus, red0, "--exclude", f"{red1},{red2}", "-k", "10")
    assert not set(RED) & set(names(res))
    assert res["exclude"] == [int(red1), int(red2)]
    # Liked blue, disliked red: the blue squares and no red circle.
    (blue0,) = ids(corpus, "blue0.png")
    res = recommend(capsys, corpus, blue0, "--negative", red0, "-k", "3")
    assert {"blue1.png", "blue2.png"} <= set(names(res)) and "red0.png" not in names(res)


def test_diversity_trades_relevance_for_variety(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    (red0,) = ids(corpus, "red0.png")
    plain = recommend(capsys, corpus, red0, "-k", "5")
    varied = recommend(capsys, corpus, red0, "-k", "5", "--diversity", "0.9")
    assert varied["diversity"] == 0.9 and len(varied["hits"]) == 5
    circles = [len(set(RED) & set(names(p))) for p in (plain, varied)]
    assert circles[0] == 2 and circles[1] < circles[0], (names(plain), names(varied))


def test_recency_weighs_the_latest_positives_more(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    red0, blue0 = ids(corpus, "red0.png", "blue0.png")
    blue_last = recommend(capsys, corpus, red0, blue0, "--recency", "0.9", "--type", "image")
    red_last = recommend(capsys, corpus, blue0, red0, "--recency", "0.9", "--type", "image")
    assert names(blue_last)[0] in BLUE and names(red_last)[0] in RED
    assert blue_last["recency"] == 0.9


def test_min_score_with_nothing_left_says_so(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    (blue0,) = ids(corpus, "blue0.png")
    res = recommend(capsys, corpus, blue0, "--type", "image", "--min-score", "0.99", status=1)
    assert res["hits"] == [] and res["note"].startswith("no confident match; best was ")
    assert res["best_below"]["path"].endswith(".png")
    code, out, _ = run(
        capsys, "recommend", blue0, "--type", "image", "--min-score", "0.99", "-l", corpus.library
    )
    assert code == 1 and out.startswith("no confident match")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["1", "--diversity", "1.5"], ["--diversity", "between 0 and 1"]),
        (["1", "--diversity", "x"], ["--diversity", "number"]),
        (["1", "--recency", "1"], ["--recency", "1 excluded"]),
        (["1,x"], ["'x'", "item id"]),
        (["1", "--exclude", "a"], ["--exclude", "'a'"]),
        (["1", "--negative", ""], ["--negative", "no item id"]),
        (["99999"], ["no item 99999"]),
        (["1", "--where", "price<=abc"], ["price", "number"]),
        (["1", "--json", "--paths"], ["--paths"]),
    ],
)
def test_bad_input_is_one_line(
    corpus: Corpus, capsys: pytest.CaptureFixture[str], argv: list[str], words: list[str]
) -> None:
    code, out, err = run(capsys, "recommend", *argv, "--library", corpus.library)
    assert code == 2 and out == ""
    line = one_error_line(err)
    for word in words:
        assert word in line, line
