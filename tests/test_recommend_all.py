"""`aerec recommend MODEL --all-users --out FILE` and :func:`aerec.workflows.recommend_all`:
every user's top-N streamed to CSV or Parquet, chunk by chunk, for rating and implicit models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aerec.errors import ConfigError, DataError
from aerec.loading import load_model
from aerec.testing import planted_implicit
from aerec.workflows import read_user_list, recommend_all
from tests.cli import ok, run


@pytest.fixture(scope="module")
def rating_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "m"
    ok("train", "--data", "synthetic", "--n-ratings", 1500, "--set", "train.epochs=2", "--threads", 1,
       "--no-progress", "--out", out, "--json")
    return out


@pytest.fixture(scope="module")
def implicit_model(tmp_path_factory):
    data = planted_implicit()
    path = tmp_path_factory.mktemp("implicit") / "planted.csv"
    pd.concat([data.train.frame, data.test.frame], ignore_index=True).to_csv(path, index=False)
    out = tmp_path_factory.mktemp("models") / "ease"
    ok("train", "--train", path, "--model", "ease", "--no-progress", "--threads", 1, "--out", out, "--json")
    return out


def read(path):
    return pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(path)


def check_against_recommend(model, frame, n, users=None):
    users = list(model.users_.to_list()) if users is None else users
    assert list(pd.unique(frame["user"])) == users
    for user, rows in frame.groupby("user", sort=False):
        expected = model.recommend(user, n)
        assert list(rows["rank"]) == list(range(1, len(expected) + 1))
        assert list(rows["item"]) == list(expected["item"])
        np.testing.assert_allclose(rows["score"].to_numpy(), expected["score"].to_numpy(), rtol=1e-5, atol=1e-6)
        if "prediction" in expected.columns:
            np.testing.assert_allclose(rows["prediction"].to_numpy(), expected["prediction"].to_numpy(), rtol=1e-5)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("which", ["rating_model", "implicit_model"])
def test_every_user_gets_recommends_list(request, tmp_path, suffix, which):
    model_dir = request.getfixturevalue(which)
    out = tmp_path / f"recs{suffix}"
    r = ok("recommend", model_dir, "--all-users", "-n", 5, "--out", out, "--no-progress")
    assert "written to" in r.output and out.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
    model = load_model(model_dir)
    frame = read(out)
    expected_cols = ["user", "rank", "item", "score"] + (["prediction"] if model.predicts_ratings else [])
    assert list(frame.columns) == expected_cols
    check_against_recommend(model, frame, 5)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_small_chunks_give_the_same_file(rating_model, tmp_path, suffix):
    model = load_model(rating_model)
    big = recommend_all(model, tmp_path / f"a{suffix}", n=4, chunk=10_000)
    calls = []
    small = recommend_all(model, tmp_path / f"b{suffix}", n=4, chunk=3, progress=lambda d, t: calls.append((d, t)))
    assert big.n_rows == small.n_rows and big.n_users == small.n_users == len(model.users_)
    pd.testing.assert_frame_equal(read(big.path), read(small.path))
    assert calls[-1] == (len(model.users_), len(model.users_)) and len(calls) == -(-len(model.users_) // 3)


def test_users_file_subset_and_unknown_users(rating_model, tmp_path):
    model = load_model(rating_model)
    some = model.users_.to_list()[:7][::-1]
    users = tmp_path / "users.txt"
    users.write_text("\n".join(map(str, some)) + "\nnobody\nghost\n")
    out = tmp_path / "recs.csv"
    r = ok("recommend", rating_model, "--all-users", "--users", users, "--out", out, "-n", 3, "--no-progress")
    assert "2 of the 9 users" in r.output and "nobody" in r.output
    check_against_recommend(model, read(out), 3, users=some)
    # a CSV with a user column works too
    csv = tmp_path / "users.csv"
    pd.DataFrame({"name": ["x"] * 3, "user": some[:3]}).to_csv(csv, index=False)
    ok("recommend", rating_model, "--all-users", "--users", csv, "--out", out, "-n", 3, "--no-progress")
    check_against_recommend(model, read(out), 3, users=some[:3])


def test_no_known_user_is_an_error_and_nothing_is_written(rating_model, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("nobody\nghost\n")
    out = tmp_path / "recs.csv"
    r = run("recommend", rating_model, "--all-users", "--users", users, "--out", out, "--no-progress")
    assert r.exit_code != 0 and "none of the 2 users" in r.output
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(DataError, match="none of the 1 users"):
        recommend_all(load_model(rating_model), tmp_path / "x.csv", users=["ghost"])


def test_fewer_candidates_than_n(implicit_model, tmp_path):
    model = load_model(implicit_model)
    out = recommend_all(model, tmp_path / "r.parquet", n=10_000).path
    check_against_recommend(model, read(out), 10_000)


def test_titles_are_written_when_known(rating_model, tmp_path):
    model = load_model(rating_model)
    model.item_info_ = pd.DataFrame({"title": [f"T{i}" for i in model.items_.to_list()]},
                                    index=pd.Index(model.items_.to_list()))
    for suffix in (".csv", ".parquet"):
        frame = read(recommend_all(model, tmp_path / f"r{suffix}", n=2, chunk=5).path)
        assert list(frame.columns)[-1] == "title"
        assert (frame["title"] == "T" + frame["item"].astype(str)).all()


@pytest.mark.parametrize(("args", "message"), [
    (("--all-users",), "needs --out"),
    (("--all-users", "--out", "recs.txt"), ".csv or .parquet"),
    (("--out", "recs.csv"), "go with --all-users"),
    (("--all-users", "--user", "1", "--out", "recs.csv"), "does not go with --user"),
    (("--all-users", "--out", "recs.csv", "-n", "0"), "-n must be"),
    (("--all-users", "--out", "recs.csv", "--users", "missing.txt"), "no such file"),
])
def test_bad_flags_exit_2_before_any_work(rating_model, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    r = run("recommend", rating_model, *args)
    assert r.exit_code == 2 and message in r.output, r.output
    assert not (tmp_path / "recs.csv").exists()


def test_out_in_a_file_is_refused_before_loading(tmp_path):
    (tmp_path / "f").write_text("x")
    r = run("recommend", tmp_path / "no-model", "--all-users", "--out", tmp_path / "f" / "recs.csv")
    assert r.exit_code == 2 and "is a file" in r.output


def test_json_summary(rating_model, tmp_path):
    r = ok("recommend", rating_model, "--all-users", "--out", tmp_path / "r.csv", "-n", 2, "--json")
    doc = json.loads(r.stdout)
    assert doc["rows"] == len(read(tmp_path / "r.csv")) and doc["columns"][:4] == ["user", "rank", "item", "score"]


def test_read_user_list(tmp_path):
    p = tmp_path / "u.txt"
    p.write_text("user\n1\n 2 \n\n3\n")
    assert read_user_list(p) == ["1", "2", "3"]
    p.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="none is named user"):
        read_user_list(p)
    p.write_text("")
    with pytest.raises(DataError, match="no user ids"):
        read_user_list(p)


def test_config_errors_in_the_library(rating_model, tmp_path):
    model = load_model(rating_model)
    with pytest.raises(ConfigError):
        recommend_all(model, tmp_path / "r.json")
    with pytest.raises(ConfigError):
        recommend_all(model, tmp_path / "r.csv", chunk=0)
