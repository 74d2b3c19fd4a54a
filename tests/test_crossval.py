"""Cross-validation: ``aerec.cross_validate`` and ``aerec cv``, on small synthetic data (a
couple of thousand ratings, a small network, two epochs, one thread), so the file runs in
seconds; the MovieLens u1..u5 wiring test is marked slow."""

from __future__ import annotations

import json

import numpy as np
import pytest

import aerec
from aerec.crossval import FOLD_METRICS, cross_validate, make_folds
from aerec.data.synthetic import synthetic_ratings
from aerec.errors import ConfigError, DataError
from tests.cli import run
from tests.conftest import needs_ml100k

N = 1500
SMALL = {"model": {"kind": "autorec", "hidden": [16]}, "train": {"epochs": 2}, "run": {"threads": 1}}
FAST = ("--set", "model.hidden=[16]", "--epochs", "2", "--threads", "1", "--no-progress")


@pytest.fixture(scope="module")
def ratings():
    return synthetic_ratings(N)


@pytest.fixture(scope="module")
def result(ratings):
    return cross_validate(ratings, folds=3, config=SMALL)


@pytest.fixture(scope="module")
def cli_json():
    r = run("cv", "--data", "synthetic", "--n-ratings", N, "--folds", "3", *FAST, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_folds_partition_the_ratings(ratings):
    parts = make_folds(ratings, folds=4, seed=3)
    lines = np.concatenate([p.test.frame.index.to_numpy() for p in parts])
    assert len(lines) == len(ratings) and len(np.unique(lines)) == len(ratings)  # each rating tested once
    for p in parts:
        assert len(p.train) + len(p.test) == len(ratings)
        assert not set(p.train.frame.index) & set(p.test.frame.index)
    sizes = [len(p.test) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    again = make_folds(ratings, folds=4, seed=3)  # seeded: the same folds
    assert all(a.test.frame.index.equals(b.test.frame.index) for a, b in zip(parts, again))


def test_result_tests_every_rating_once_and_summarises_the_folds(result):
    assert len(result.folds) == 3 and sum(f["n_test"] for f in result.folds) == N
    for f in result.folds:
        assert f["n_train"] + f["n_test"] == N
        assert all(np.isfinite(f[m]) for m in FOLD_METRICS)
    for name in FOLD_METRICS:
        values = np.array([f[name] for f in result.folds])
        assert result.mean[name] == pytest.approx(values.mean())
        assert result.std[name] == pytest.approx(values.std())  # population, as Surprise
        base = np.array([f[name] for f in result.baseline_folds])
        assert result.baseline_mean[name] == pytest.approx(base.mean())
        assert result.baseline_std[name] == pytest.approx(base.std())


def test_folds_are_named_and_their_spec_reproduces_them(ratings, result):
    from aerec.data.splits import parse_split

    assert [f["fold"] for f in result.folds] == ["fold 1", "fold 2", "fold 3"]
    assert [f["split"] for f in result.folds] == [f"kfold:3:{i}:seed=0" for i in range(3)]
    again = parse_split(result.folds[1]["split"])(ratings)  # what aerec train --split SPEC would test on
    assert len(again.test) == result.folds[1]["n_test"]


def test_baseline_is_the_bias_model_on_the_same_fold(ratings, result):
    part = make_folds(ratings, folds=3, seed=0)[0]
    bias = aerec.BiasModel().fit(part.train)
    frame = part.test.frame
    users = bias.users_.index(frame["user"].to_numpy(), unknown="missing")
    items = bias.items_.index(frame["item"].to_numpy(), unknown="missing")
    pred = np.clip(bias.predict(users, items), 1, 5)
    rmse = float(np.sqrt(np.mean((pred - frame["rating"].to_numpy()) ** 2)))
    assert result.baseline_folds[0]["rmse"] == pytest.approx(rmse, rel=1e-5)
    assert result.baseline_folds[0]["n_test"] == result.folds[0]["n_test"]


def test_public_and_json_ready(result):
    assert aerec.cross_validate is cross_validate
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["model"] == "autorec" and doc["baseline"]["model"] == "bias"


def test_cli_json_shape(cli_json):
    assert {"folds", "mean", "std", "baseline"} <= set(cli_json)
    assert len(cli_json["folds"]) == 3
    assert set(FOLD_METRICS) <= set(cli_json["mean"]) and set(FOLD_METRICS) <= set(cli_json["std"])
    assert {"folds", "mean", "std"} <= set(cli_json["baseline"]) and len(cli_json["baseline"]["folds"]) == 3
    assert sum(f["n_test"] for f in cli_json["folds"]) == N
    rmse = [f["rmse"] for f in cli_json["folds"]]
    assert cli_json["mean"]["rmse"] == pytest.approx(np.mean(rmse))
    assert cli_json["std"]["rmse"] == pytest.approx(np.std(rmse))


def test_cli_table(cli_json):
    r = run("cv", "--data", "synthetic", "--n-ratings", N, "--folds", "3", *FAST)
    assert r.exit_code == 0, r.output
    for word in ("fold 1", "fold 3", "mean", "std", "bias mean", "RMSE", "MAE", "NDCG@10", "fit s"):
        assert word in r.stdout
    assert f"{cli_json['mean']['rmse']:.4f}" in r.stdout


def test_named_splits_match_kfold(cli_json):
    specs = ",".join(f"kfold:3:{i}" for i in range(3))
    r = run("cv", "--data", "synthetic", "--n-ratings", N, "--splits", specs, *FAST, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [f["rmse"] for f in doc["folds"]] == pytest.approx([f["rmse"] for f in cli_json["folds"]], abs=1e-6)


def test_jobs_give_the_same_numbers(cli_json):
    r = run("cv", "--data", "synthetic", "--n-ratings", N, "--folds", "3", *FAST, "--json", "--jobs", "2")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    for mine, theirs in zip(doc["folds"], cli_json["folds"]):
        for name in ("rmse", "mae", "precision@10", "ndcg@10"):
            assert mine[name] == pytest.approx(theirs[name], abs=1e-6), name


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--folds", "1"), ["--folds 1", "at least 2", "--folds 5"]),
        (("--folds", "0"), ["--folds 0", "at least 2"]),
        (("--folds", "-3"), ["--folds -3", "at least 2"]),
        (("--folds", "21"), ["--folds 21", "20", "at most --folds 20"]),
        (("--folds", "3", "--splits", "u1,u2"), ["not both"]),
        ((), ["--folds K", "--splits"]),
        (("--splits", "u1"), ["at least 2"]),
        (("--splits", "u1,,u2"), ["empty entry"]),
        (("--folds", "3", "--model", "ease"), ["implicit", "ease"]),
        (("--folds", "3", "--jobs", "0"), ["--jobs 0"]),
    ],
)
def test_bad_input_exits_2_with_a_message(args, words):
    r = run("cv", "--data", "synthetic", "--n-ratings", "20", *args, "--no-progress")
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "error:" in r.output
    for word in words:
        assert word in r.output, (word, r.output)


def test_library_errors(ratings):
    with pytest.raises(ConfigError, match="at least 2"):
        cross_validate(ratings, folds=1)
    with pytest.raises(DataError, match="more folds than the data has ratings"):
        cross_validate(ratings.subset(np.arange(len(ratings)) < 5), folds=6)
    with pytest.raises(ConfigError, match="implicit"):
        cross_validate(ratings, folds=3, config={"model": {"kind": "multvae"}})


def test_train_file(tmp_path, ratings):
    path = tmp_path / "r.csv"
    ratings.frame[["user", "item", "rating"]].iloc[:600].to_csv(path, index=False)
    r = run("cv", "--train", path, "--folds", "2", *FAST, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [f["n_test"] for f in doc["folds"]] == [300, 300]


@needs_ml100k
@pytest.mark.slow
def test_ml100k_canonical_splits():
    r = run("cv", "--data", "ml-100k", "--splits", "u1,u2", "--epochs", "1", "--set", "model.hidden=[50]",
            "--threads", "1", "--no-progress", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [f["fold"] for f in doc["folds"]] == ["u1", "u2"]
    assert [f["n_test"] for f in doc["folds"]] == [20_000, 20_000]
    assert doc["baseline"]["mean"]["rmse"] == pytest.approx(0.945, abs=0.01)
