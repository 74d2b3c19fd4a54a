"""`aerec train | evaluate | recommend | predict` and the HTTP API with implicit top-N models.

Data: the planted implicit ratings of aerec.testing (two user groups liking two item groups)
written to a CSV, with the held-out users in the same file for strong generalization splits.
EASE fits in milliseconds, so most commands use it; test_implicit_contract.py covers the networks.
"""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

import aerec
from aerec.implicit import ImplicitRecommender
from aerec.ranking import DEFAULT_METRICS
from aerec.testing import planted_implicit
from tests.cli import ok, run

FAST = ("--no-progress", "--threads", "1")
SPLIT = "user:8:val=8"


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    data = planted_implicit()
    frame = pd.concat([data.train.frame, data.test.frame], ignore_index=True)
    path = tmp_path_factory.mktemp("implicit") / "planted.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(data_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "ease"
    r = ok("train", "--train", data_file, "--model", "ease", "--split", SPLIT, *FAST, "--out", out, "--json")
    return out, json.loads(r.stdout)


def test_train_reports_ranking_metrics_under_strong_generalization(trained):
    out, doc = trained
    assert doc["model"] == "ease" and doc["task"] == "implicit" and doc["threshold"] == 4.0
    assert doc["n_new_users"] == 8 and doc["n_known_users"] == 0 and doc["n_users"] == 8
    for key in DEFAULT_METRICS:
        assert 0 <= doc[key] <= 1, key
    assert doc["recall@20"] > 0.6 and doc["l2"] > 0
    model = aerec.load_model(out)
    assert isinstance(model, ImplicitRecommender) and model.kind == "ease"
    assert json.loads((out / "metrics.json").read_text()) == {k: v for k, v in doc.items() if k != "out"}


def test_evaluate_gives_the_same_figures_as_train_on_the_same_split(trained, data_file):
    out, doc = trained
    again = json.loads(ok("evaluate", out, "--data", data_file, "--split", SPLIT, "--json").stdout)
    for key in ("recall@20", "recall@50", "ndcg@100", "n_users", "n_held_out"):
        assert again[key] == pytest.approx(doc[key]), key


def test_evaluate_human_table(trained, data_file):
    r = ok("evaluate", trained[0], "--data", data_file, "--split", SPLIT)
    assert "ndcg@100" in r.stdout and "80 % folded in" in r.stdout  # the table is the result: stdout


def test_per_user_hold_out_ranks_against_the_training_rows(data_file, tmp_path):
    r = ok("train", "--train", data_file, "--implicit", "--model", "popularity", "--split", "peruser:0.2", *FAST,
           "--out", tmp_path / "m", "--json")
    doc = json.loads(r.stdout)
    assert doc["n_known_users"] == doc["n_users"] > 0 and doc["n_new_users"] == 0


def test_event_data_without_a_model_trains_the_implicit_default(tmp_path):
    events = tmp_path / "events.csv"
    rows = [f"u{u},{'x' if u % 2 else 'y'}{i}" for u in range(30) for i in range(u % 5, u % 5 + 6)]
    events.write_text("user,item\n" + "\n".join(rows) + "\n")
    r = ok("train", "--train", events, *FAST, "--out", tmp_path / "m", "--json")
    doc = json.loads(r.stdout)
    assert doc["model"] == "easedae" and doc["threshold"] is None and doc["n_train"] == 30 * 6
    assert doc["epochs_run"] >= 1 and doc["ease_l2"] > 0 and 0 <= doc["weight"] <= 1
    recs = json.loads(ok("recommend", tmp_path / "m", "--items", "x1,x2", "-n", "3", "--json").stdout)
    assert len(recs["recommendations"]) == 3
    assert {"x1", "x2"}.isdisjoint(str(r["item_id"]) for r in recs["recommendations"])


def test_events_are_scored_against_a_test_file_of_ratings_read_as_events(tmp_path):
    events, test = tmp_path / "events.csv", tmp_path / "test.csv"
    rows = [f"u{u},{'x' if u % 2 else 'y'}{i}" for u in range(30) for i in range(u % 5, u % 5 + 6)]
    events.write_text("user,item\n" + "\n".join(rows) + "\n")
    test.write_text("user,item,rating\n" + "".join(f"n{u},x{i},5\n" for u in range(4) for i in range(6)))
    r = ok("train", "--train", events, "--test", test, *FAST, "--out", tmp_path / "m", "--json")
    doc = json.loads(r.stdout)  # the ratings 5 are interactions; no "outside the scale 0..1"
    assert doc["test"] == str(test) and doc["n_new_users"] == 4 and 0 <= doc["ndcg@100"] <= 1


def test_implicit_reads_a_file_whose_columns_name_no_rating_as_events(tmp_path):
    f = tmp_path / "clicks.csv"
    f.write_text("user,item,device\n" + "".join(f"u{u},i{(u + k) % 7},phone\n" for u in range(12) for k in range(3)))
    refused = run("train", "--train", f, "--out", tmp_path / "a", *FAST)
    assert refused.exit_code == 2 and "--implicit" in refused.stderr
    r = ok("train", "--train", f, "--implicit", "--model", "ease", *FAST, "--out", tmp_path / "b", "--json")
    doc = json.loads(r.stdout)
    assert doc["n_train"] == 12 * 3 and doc["threshold"] is None


def test_recommend_for_known_and_new_users(trained):
    out, _ = trained
    known = json.loads(ok("recommend", out, "--user", "a0", "-n", "4", "--json").stdout)
    assert known["user"] == "a0" and all(str(r["item_id"]).startswith("x") for r in known["recommendations"])
    by_items = json.loads(ok("recommend", out, "--items", "y0,y1,y2,y3", "-n", "4", "--json").stdout)
    assert all(str(r["item_id"]).startswith("y") for r in by_items["recommendations"])
    by_ratings = json.loads(ok("recommend", out, "--ratings", "y0=5,y1=5,y2=4,y3=4,x0=1", "-n", "4", "--json").stdout)
    assert [r["item_id"] for r in by_ratings["recommendations"]] == [r["item_id"] for r in by_items["recommendations"]]
    table = ok("recommend", out, "--items", "y0,y1", "-n", "2")
    assert "2 items" in table.stdout  # "top 2 for a new user with 2 items"


@pytest.mark.parametrize(
    "args, message",
    [
        (("--implicit", "--model", "autorec"), "rating model"),
        (("--threshold", "4"), "--threshold goes with implicit models"),
        (("--model", "ease", "--threshold", "9"), "keeps no rating"),
        (("--model", "multvae", "--set", "train.optimizer=lbfgs", "--set", "train.batch_size=0"), "gradient optimiser"),
    ],
)
def test_bad_implicit_combinations_exit_2(data_file, tmp_path, args, message):
    r = run("train", "--train", data_file, *args, *FAST, "--out", tmp_path / "m")
    assert r.exit_code in (1, 2) and message in r.stderr, r.output
    assert not (tmp_path / "m").exists()


def test_predict_and_misused_recommend_flags_exit_2(trained, tmp_path):
    out, _ = trained
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a0,x1\n")
    r = run("predict", out, "--pairs", pairs)
    assert r.exit_code == 2 and "predicts no ratings" in r.stderr
    r = run("recommend", out, "--items", "x1", "--user", "a0")
    assert r.exit_code == 2 and "got two of them" in r.stderr
    r = run("recommend", out, "--items", "x1=5")
    assert r.exit_code == 2 and "--items takes item ids only" in r.stderr


def test_items_are_refused_by_rating_models(tmp_path):
    ok("train", "--data", "toy", "--set", "train.epochs=1", *FAST, "--out", tmp_path / "toy")
    r = run("recommend", tmp_path / "toy", "--items", "1,2")
    assert r.exit_code == 2 and "--items is for implicit models" in r.stderr


# ----------------------------------------------------------------------------- the HTTP API
def test_the_api_serves_an_implicit_model(trained):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2")
        from fastapi.testclient import TestClient
    from aerec.serve import create_app

    out, _ = trained
    model = aerec.load_model(out)
    client = TestClient(create_app(out))
    health = client.get("/health").json()
    assert health["task"] == "implicit" and health["model"] == "ease"

    body = client.post("/v1/recommendations", json={"ratings": {"x0": 5, "x1": 5, "x2": 4, "y0": 1}, "n": 5}).json()
    ids = [r["item_id"] for r in body["recommendations"]]
    expected = model.recommend_new({"x0": 5, "x1": 5, "x2": 4, "y0": 1}, n=5)
    assert ids == [str(i) for i in expected["item"]] and all(i.startswith("x") for i in ids)
    assert [r["score"] for r in body["recommendations"]] == pytest.approx(expected["score"].tolist(), abs=1e-4)

    known = model.users_.to_list()[-1]  # a training user (the split held some users out)
    user = client.get(f"/v1/users/{known}/recommendations", params={"n": 3}).json()
    assert [r["item_id"] for r in user["recommendations"]] == [str(i) for i in model.recommend(known, n=3)["item"]]

    cold = client.post("/v1/recommendations", json={"ratings": {}, "n": 3}).json()
    assert [r["item_id"] for r in cold["recommendations"]] == [str(i) for i in model.recommend_new([], n=3)["item"]]

    for pairs in ([["a0", "x1"]], []):  # an empty list too: the answer must not depend on it
        refused = client.post("/v1/predict", json={"pairs": pairs})
        assert refused.status_code == 422 and "predicts no ratings" in refused.json()["detail"]
    off = client.post("/v1/recommendations", json={"ratings": {"x0": 7}, "n": 3})
    assert off.status_code == 422


def test_a_resumed_multvae_run_ends_where_an_uninterrupted_one_does(data_file, tmp_path):
    """The KL schedule counts updates across epochs and checkpoints: a resume continues it."""
    common = ("--train", data_file, "--model", "multvae", "--split", SPLIT, "--set", "model.hidden=[16,8]",
              "--set", "train.batch_size=8", *FAST, "--json")
    whole = json.loads(ok("train", *common, "--epochs", "4", "--out", tmp_path / "whole").stdout)
    ckpt = tmp_path / "ckpt"
    ok("train", *common, "--epochs", "2", "--checkpoint-dir", ckpt, "--out", tmp_path / "half")
    resumed = json.loads(ok("train", *common, "--epochs", "4", "--checkpoint-dir", ckpt, "--resume",
                            "--out", tmp_path / "resumed").stdout)
    assert resumed["epochs_run"] == whole["epochs_run"] == 4
    for key in ("best_val_ndcg@100", "ndcg@100", "recall@20"):
        assert resumed[key] == whole[key], key
