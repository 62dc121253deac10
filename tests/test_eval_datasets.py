"""Pair readers on small files of every supported format, written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmsearch.eval.datasets import DatasetError, PairSet, read_pairs


def touch(*paths: Path) -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def captions_by_media(ps: PairSet) -> dict[str, list[str]]:
    return {
        Path(ps.media[m]).name: [ps.captions[t] for t in ts]
        for m, ts in enumerate(ps.captions_of())
    }


def test_karpathy_split_filepath_missing_and_limit(tmp_path: Path) -> None:
    imgs = tmp_path / "imgs"
    touch(imgs / "a.jpg", imgs / "val2014" / "b.jpg", imgs / "c.jpg")
    doc = {
        "images": [
            {"filename": "a.jpg", "split": "train", "imgid": 0, "sentences": [{"raw": "A dog."}]},
            {
                "filename": "b.jpg",
                "filepath": "val2014",
                "split": "test",
                "imgid": 1,
                "sentences": [{"raw": "Two cats. "}, {"tokens": ["a", "cat"], "raw": ""}],
            },
            {"filename": "gone.jpg", "split": "test", "sentences": [{"raw": "lost"}]},
            {"filename": "c.jpg", "split": "test", "sentences": [{"raw": "A bird."}]},
            {"filename": "d.jpg", "split": "restval", "sentences": [{"raw": "A fish."}]},
        ]
    }
    f = tmp_path / "dataset_flickr30k.json"
    f.write_text(json.dumps(doc))
    ps = read_pairs(f, root=imgs)
    assert ps.format == "karpathy" and ps.modality == "image"
    assert captions_by_media(ps) == {"b.jpg": ["Two cats.", "a cat"], "c.jpg": ["A bird."]}
    assert ps.caption_media == [0, 0, 1]
    assert ps.media[0] == str(imgs / "val2014" / "b.jpg")
    assert ps.missing == ["gone.jpg"]
    assert ps.name == "dataset_flickr30k:test"
    assert ps.extra[0]["image_id"] == 1
    # several splits at once; everything; a limit on media items
    assert read_pairs(f, split="train,test", root=imgs).n_media == 3
    assert read_pairs(f, split=None, root=imgs).n_media == 3  # d.jpg is missing
    limited = read_pairs(f, root=imgs, limit=1)
    assert limited.n_media == 1 and limited.n_captions == 2
    with pytest.raises(DatasetError, match="no pairs in split 'val'.*restval, test, train"):
        read_pairs(f, split="val", root=imgs)


def test_coco_captions_relative_to_file_folder(tmp_path: Path) -> None:
    touch(tmp_path / "000001.jpg", tmp_path / "000002.jpg")
    doc = {
        "images": [{"id": 1, "file_name": "000001.jpg"}, {"id": 2, "file_name": "000002.jpg"}],
        "annotations": [
            {"id": 10, "image_id": 2, "caption": "a plane"},
            {"id": 11, "image_id": 1, "caption": "a train"},
            {"id": 12, "image_id": 2, "caption": "an aircraft "},
        ],
    }
    f = tmp_path / "captions_val2017.json"
    f.write_text(json.dumps(doc))
    ps = read_pairs(f)  # the file has no split: read whole whatever split is asked for
    assert ps.format == "coco"
    assert captions_by_media(ps) == {
        "000001.jpg": ["a train"],
        "000002.jpg": ["a plane", "an aircraft"],
    }
    assert ps.extra[1] == {"image_id": 2, "annotation_id": 10}


def test_msrvtt_json_and_csv(tmp_path: Path) -> None:
    vids = tmp_path / "videos"
    touch(vids / "video0.mp4", vids / "video1.webm", vids / "video1.txt", vids / "video7.mkv")
    doc = {
        "videos": [
            {"video_id": "video0", "split": "train"},
            {"video_id": "video1", "split": "test"},
            {"video_id": "video2", "split": "test"},
        ],
        "sentences": [
            {"video_id": "video1", "caption": "a man sings", "sen_id": 3},
            {"video_id": "video0", "caption": "a cat jumps", "sen_id": 1},
            {"video_id": "video1", "caption": "someone singing", "sen_id": 4},
            {"video_id": "video2", "caption": "missing clip", "sen_id": 5},
        ],
    }
    f = tmp_path / "MSRVTT_data.json"
    f.write_text(json.dumps(doc))
    ps = read_pairs(f, root=vids)
    assert ps.format == "msrvtt" and ps.modality == "video"
    assert captions_by_media(ps) == {"video1.webm": ["a man sings", "someone singing"]}
    assert ps.missing == ["video2.*"]
    csv = tmp_path / "MSRVTT_JSFUSION_test.csv"
    csv.write_text(
        "key,vid_key,video_id,sentence\n"
        "ret0,msr7,video7,a woman cooks\n"
        "ret1,msr0,video0,a cat jumps\n"
    )
    pc = read_pairs(csv, root=vids)
    assert pc.format == "msrvtt-csv"
    assert captions_by_media(pc) == {"video7.mkv": ["a woman cooks"], "video0.mp4": ["a cat jumps"]}


def test_audiocaps_naming_conventions(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    touch(
        audio / "abc_30.wav",
        audio / "Ydef.flac",
        audio / "103.mp3",
        audio / "Yghi_10.000_20.000.wav",
    )
    f = tmp_path / "test.csv"
    f.write_text(
        "audiocap_id,youtube_id,start_time,caption\n"
        "101,abc,30,A dog barks\n"
        "102,abc,30,Barking nearby\n"
        "105,def,0,Rain falls\n"
        "103,xyz,50,Wind blows\n"
        "104,ghi,10,A car passes\n"
        "106,nope,0,Silence\n"
    )
    ps = read_pairs(f, root=audio)
    assert ps.format == "audiocaps" and ps.modality == "audio"
    assert captions_by_media(ps) == {
        "abc_30.wav": ["A dog barks", "Barking nearby"],
        "Ydef.flac": ["Rain falls"],
        "103.mp3": ["Wind blows"],
        "Yghi_10.000_20.000.wav": ["A car passes"],
    }
    assert len(ps.missing) == 1 and ps.missing[0].startswith("nope_0")


def test_clotho(tmp_path: Path) -> None:
    touch(tmp_path / "evaluation" / "birds at dawn.wav")
    f = tmp_path / "clotho_captions_evaluation.csv"
    f.write_text(
        "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
        '"birds at dawn.wav",birds chirp,"many birds, singing",dawn chorus,,birdsong\n'
    )
    ps = read_pairs(f, root=tmp_path / "evaluation")
    assert ps.format == "clotho" and ps.modality == "audio"
    assert ps.captions == ["birds chirp", "many birds, singing", "dawn chorus", "birdsong"]
    assert ps.caption_media == [0, 0, 0, 0]


def test_jsonl_aliases_paths_extra_and_splits(tmp_path: Path) -> None:
    touch(
        tmp_path / "data" / "img" / "1.png",
        tmp_path / "other" / "2.png",
        tmp_path / "elsewhere" / "3.jpg",
    )
    abs_path = tmp_path / "elsewhere" / "3.jpg"
    lines = [
        {"media": "img/1.png", "caption": "one", "split": "test", "score": 5},
        {"image": "../other/2.png", "text": "two", "split": "test"},
        {},
        {"path": str(abs_path), "caption": ["three", "drei"], "split": "test"},
        {"media": "img/1.png", "caption": "uno", "split": "test"},
        {"media": "img/1.png", "caption": "train only", "split": "train"},
        {"media": "img/missing.png", "caption": "nothing", "split": "test"},
        {"media": "img/1.png", "caption": "  ", "split": "test"},
    ]
    f = tmp_path / "data" / "pairs.jsonl"
    f.write_text("\n".join("" if not d else json.dumps(d) for d in lines) + "\n")
    ps = read_pairs(f)
    assert ps.format == "jsonl" and ps.modality == "image"
    assert captions_by_media(ps) == {
        "1.png": ["one", "uno"],
        "2.png": ["two"],
        "3.jpg": ["three", "drei"],
    }
    assert ps.extra[0] == {"split": "test", "score": 5}
    assert ps.missing == ["img/missing.png"]
    assert read_pairs(f, split="train").captions == ["train only"]
    assert read_pairs(f, split="all").n_captions == 6
    # a root overrides the file's folder
    touch(tmp_path / "root2" / "img" / "1.png")
    rooted = read_pairs(f, split="train", root=tmp_path / "root2")
    assert rooted.media == [str(tmp_path / "root2" / "img" / "1.png")]
    # a JSON list of the same objects, and JSONL without any split field
    listed = tmp_path / "data" / "pairs.json"
    listed.write_text(json.dumps([{"video": "img/1.png", "caption": "as video"}]))
    lp = read_pairs(listed)
    assert lp.modality == "video" and lp.captions == ["as video"]


def test_csv_and_tsv_pairs(tmp_path: Path) -> None:
    touch(tmp_path / "a.mp3", tmp_path / "b.wav")
    f = tmp_path / "pairs.csv"
    f.write_text('media,caption,label\na.mp3,"a bell, ringing",x\nb.wav,a horn,y\n')
    ps = read_pairs(f)
    assert ps.format == "csv" and ps.modality == "audio"
    assert ps.captions == ["a bell, ringing", "a horn"] and ps.extra[1] == {"label": "y"}
    t = tmp_path / "pairs.tsv"
    t.write_text("audio\ttext\na.mp3\ta bell\n")
    assert read_pairs(t).captions == ["a bell"]


REFUSED = [
    ("bad.jsonl", '{"media": "a.png", "caption": "x"}\n{"media": "b.png", "caption": "y"\n',
     "bad.jsonl:2: not valid JSON"),
    ("nocap.jsonl", '{"media": "a.png", "caption": "x"}\n{"media": "b.png"}\n',
     "nocap.jsonl:2: needs a media field"),
    ("what.csv", "foo,bar\n1,2\n", "unknown format"),
    ("weird.json", '{"something": []}', "unknown JSON layout"),
    ("gone.jsonl", '{"media": "a.png", "caption": "x"}\n', "no usable pairs.*1 media files missing"),
    ("mixed.jsonl", '{"media": "m.png", "caption": "x"}\n{"media": "m.wav", "caption": "y"}\n',
     "mixes modalities"),
    ("empty.jsonl", "\n \n", "empty"),
]  # fmt: skip
"""(file name, content, error): files ``read_pairs`` refuses with a clear message (beside
them only ``m.png`` and ``m.wav`` exist)."""


@pytest.mark.parametrize(("name", "content", "match"), REFUSED)
def test_bad_files_are_refused_clearly(tmp_path: Path, name: str, content: str, match: str) -> None:
    touch(tmp_path / "m.png", tmp_path / "m.wav")
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(DatasetError, match=match):
        read_pairs(f)


def test_missing_file_and_root_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        read_pairs(tmp_path / "nope.jsonl")
    f = tmp_path / "pairs.jsonl"
    f.write_text('{"media": "a.png", "caption": "x"}\n')
    with pytest.raises(DatasetError, match="root is not a folder"):
        read_pairs(f, root=tmp_path / "no-such-dir")


def test_match_key_per_media(tmp_path: Path) -> None:
    touch(tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png")
    rows = [
        {"media": "a.png", "caption": "red circle", "match_key": "red-circle"},
        {"media": "b.png", "caption": "blue star"},
        {"media": "c.png", "caption": "a red circle", "match_key": "red-circle"},
        {"media": "a.png", "caption": "a round red shape", "match_key": "red-circle"},
    ]
    f = tmp_path / "keys.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ps = read_pairs(f)
    assert ps.media_keys is not None and ps.media_keys[0] == ps.media_keys[2] == "red-circle"
    assert len(set(ps.media_keys)) == 2  # b.png has no key: distinct from everything
    assert ps.select_media([2, 1]).media_keys == ["red-circle", ps.media_keys[1]]
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"media": "a.png", "caption": "x"}) + "\n")
    assert read_pairs(plain).media_keys is None


def test_select_media_keeps_captions_in_step(tmp_path: Path) -> None:
    ps = PairSet(
        media=["/a", "/b", "/c"],
        captions=["a1", "b1", "a2", "c1"],
        caption_media=[0, 1, 0, 2],
        modality="image",
        name="t",
        extra=[{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}],
    )
    sub = ps.select_media([2, 0])
    assert sub.media == ["/c", "/a"]
    assert sub.captions == ["a1", "a2", "c1"] and sub.caption_media == [1, 1, 0]
    assert [e["i"] for e in sub.extra] == [0, 2, 3]
