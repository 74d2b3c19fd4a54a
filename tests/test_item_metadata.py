"""`aerec train ... --items FILE`: item metadata (id, title[, genres, ...]) from any CSV, TSV or
Parquet file, matched to the ratings' items, saved with the model and shown where titles are."""

from __future__ import annotations

import json
import re
import warnings

import pandas as pd
import pytest

from aerec.data.items import attach_item_info, read_item_file
from aerec.data.ratings import Ratings
from aerec.data.synthetic import synthetic_ratings
from aerec.errors import DataError
from aerec.loading import load_model
from aerec.workflows import recommend_all
from tests.cli import ok, run

FAST = ("--set", "train.epochs=1", "--threads", "1", "--no-progress")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("items")
    ratings = synthetic_ratings(1200)
    ratings.frame.to_csv(folder / "r.csv", index=False)
    items = sorted(ratings.frame["item"].unique())
    frame = pd.DataFrame({"movie_id": items, "title": [f"Film {i}" for i in items],
                          "genres": ["Drama|Comedy" if i % 2 else "Horror" for i in items], "year": 1990})
    frame.to_csv(folder / "items.csv", index=False)
    frame.to_csv(folder / "items.tsv", sep="\t", index=False)
    frame.to_parquet(folder / "items.parquet", index=False)
    return folder, items


@pytest.mark.parametrize("name", ["items.csv", "items.tsv", "items.parquet"])
def test_read_item_file_formats(files, name):
    folder, items = files
    info = read_item_file(folder / name)
    assert len(info) == len(items) and info.loc[str(items[0]), "title"] == f"Film {items[0]}"
    assert set(info["genres"]) == {"Drama|Comedy", "Horror"} and "year" in info.columns


def test_train_with_items_shows_titles_in_recommend_similar_and_files(files, tmp_path):
    folder, items = files
    out = tmp_path / "m"
    ok("train", "--train", folder / "r.csv", "--items", folder / "items.tsv", *FAST, "--out", out)
    model = load_model(out)
    assert model.item_info_.loc[items[0], "title"] == f"Film {items[0]}"
    doc = json.loads(ok("recommend", out, "--user", 1, "-n", 3, "--json").stdout)
    assert all(rec["title"] == f"Film {rec['item_id']}" for rec in doc["recommendations"])
    r = ok("similar", out, "--item", items[0], "-n", 2)
    assert f"Film {items[0]}" in r.output
    frame = pd.read_csv(recommend_all(model, tmp_path / "recs.csv", n=2).path)
    assert (frame["title"] == "Film " + frame["item"].astype(str)).all()
    genres = model.recommend(1, 3)["genres"]
    assert set(genres) <= {"Drama|Comedy", "Horror"}


def test_implicit_model_with_items(files, tmp_path):
    folder, items = files
    out = tmp_path / "ease"
    ok("train", "--train", folder / "r.csv", "--implicit", "--model", "ease", "--items", folder / "items.parquet",
       "--no-progress", "--out", out)
    top = load_model(out).recommend(1, 3)
    assert (top["title"] == "Film " + top["item"].astype(str)).all()


def test_partial_match_warns_with_counts(files, tmp_path):
    folder, items = files
    part = tmp_path / "part.csv"
    pd.DataFrame({"id": [*items[:-4], 10**9], "title": ["t"] * (len(items) - 3)}).to_csv(part, index=False)
    r = ok("train", "--train", folder / "r.csv", "--items", part, *FAST, "--out", tmp_path / "m")
    assert f"4 of the {len(items)} rated items have no line there" in r.output
    assert f"1 of its {len(items) - 3} ids are items nobody rated" in r.output


def test_no_match_is_a_clear_error(files, tmp_path):
    folder, _ = files
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"item": ["x", "y"], "title": ["a", "b"]}).to_csv(bad, index=False)
    r = run("train", "--train", folder / "r.csv", "--items", bad, *FAST, "--out", tmp_path / "m")
    assert r.exit_code == 2 and "none of the 2 item ids" in r.output and "bad.csv" in r.output
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("text", "message", "line"), [
    ("item,title\n1,a\n1,b\n", "listed twice (first on line 2)", 3),
    ("item,title\n1,a\n2,b,c\n", "expected 2 fields", 3),
    ("item,title\n1,a\n,b\n", "the item id is empty", 3),
    ("item,genres\n1,a\n", "no title column", 1),
    ("name,title\n1,a\n", "no id column", 1),
    ("item,title\n", "no items", None),
    ("", "empty", None),
])
def test_bad_items_files_name_file_and_line(tmp_path, text, message, line):
    p = tmp_path / "items.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=re.escape(message)) as info:
        read_item_file(p)
    assert info.value.path == str(p) and info.value.line == line


def test_bad_items_file_exits_2_naming_it(files, tmp_path):
    folder, _ = files
    p = tmp_path / "dup.csv"
    p.write_text("item,title\n1,a\n1,b\n")
    r = run("train", "--train", folder / "r.csv", "--items", p, *FAST, "--out", tmp_path / "m")
    assert r.exit_code == 2 and "dup.csv:3:" in r.output
    r = run("train", "--train", folder / "r.csv", "--items", tmp_path / "nope.csv", *FAST, "--out", tmp_path / "m")
    assert r.exit_code == 2 and "no such items file" in r.output


def test_string_ids_and_quoted_titles(tmp_path):
    ratings = Ratings.from_frame(pd.DataFrame({"user": ["u1", "u1", "u2"], "item": ["a", "b", "a"],
                                               "rating": [1.0, 2.0, 3.0]}))
    p = tmp_path / "items.csv"
    p.write_text('sku,name,genre\na,"Movie, The",X|Y\nb,Other,\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = attach_item_info(ratings, read_item_file(p))
    assert out.item_info.loc["a", "title"] == "Movie, The" and out.item_info.loc["a", "genres"] == "X|Y"


def test_titles_from_items_reach_the_http_api(files, tmp_path):
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2")
        from fastapi.testclient import TestClient
    from aerec.serve import create_app

    folder, items = files
    out = tmp_path / "m"
    ok("train", "--train", folder / "r.csv", "--items", folder / "items.csv", *FAST, "--out", out)
    client = TestClient(create_app(load_model(out)))
    body = client.get("/v1/users/1/recommendations", params={"n": 3}).json()
    assert [r["title"] for r in body["recommendations"]] == [f"Film {r['item_id']}" for r in body["recommendations"]]
    body = client.get(f"/v1/items/{items[0]}/similar", params={"n": 2}).json()
    assert len(body["similar"]) == 2
    assert all(r["title"] == f"Film {r['item_id']}" for r in body["similar"])
