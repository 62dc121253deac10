"""Bad filters and query parts given through the Python API raise QueryError naming them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmsearch.errors import QueryError
from mmsearch.library import Library


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import json

    from fakes import ColourEncoder, solid

    root = tmp_path_factory.mktemp("api-errors")
    for i, colour in enumerate(("red", "green", "blue")):
        solid(colour).save(root / f"{i}_{colour}.png")
        (root / f"{i}_{colour}.json").write_text(json.dumps({"price": 10 * i, "brand": "acme"}))
    library = Library.open(root / "lib", encoder=ColourEncoder())
    assert library.add([root], workers=0).added == 3
    yield library
    library.close()


@pytest.mark.parametrize(
    ("filters", "named"),
    [
        ({"price": {"lte": "abc"}}, ["price", "'abc'"]),
        ({"price": {"gte": {"x": 1}}}, ["price", "{'x': 1}"]),
        ({"price": {"lte": float("nan")}}, ["price", "nan"]),
        ({"price": [1, "z"]}, ["price", "'z'"]),
        ({"price": {"lte": True}}, ["price", "True"]),
        ({"brand": {"name": "acme"}}, ["brand", "'name'"]),
        ({"brand": ["a", "b", "c"]}, ["brand", "['a', 'b', 'c']"]),
        ({"brand": object}, ["brand"]),
        ({"type": "picture"}, ["'picture'", "image", "audio"]),
        ({"type": ["image", 3]}, ["type", "3"]),
        ({"path_prefix": {"a": 1}}, ["path_prefix"]),
        ({"date_from": "soon"}, ["date_from", "'soon'"]),
        ({"nosuch": 1}, ["'nosuch'", "brand", "price"]),
        ({"modality": "bogus"}, ["'bogus'", "image", "text"]),
        ({"modality": ["image", 5]}, ["5"]),
    ],
)
def test_bad_filter_is_a_query_error_naming_it(lib: Any, filters: dict, named: list[str]) -> None:
    with pytest.raises(QueryError) as info:
        lib.search("red", filters=filters)
    for word in named:
        assert word in str(info.value), (word, str(info.value))


def test_good_filters_still_work(lib: Any) -> None:
    assert len(lib.search("red", filters={"price": {"lte": 10}, "brand": "acme"})) == 2
    assert len(lib.search("red", filters={"price": [5, 25]})) == 2
    assert lib.search("red", filters={"type": ["image"], "modality": "any"})
    assert lib.search("red", filters={"brand": "other"}) == []


def test_missing_item_and_missing_file_are_named(lib: Any, tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="no item 424242"):
        lib.search(like=424242)
    with pytest.raises(QueryError, match="no item 99999999999999999999999"):
        lib.search(like=99999999999999999999999)
    missing = tmp_path / "gone.jpg"
    with pytest.raises(QueryError, match="gone.jpg") as info:
        lib.search(image=str(missing))
    assert "no such file" in str(info.value)
