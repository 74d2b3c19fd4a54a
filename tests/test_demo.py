"""`aerec demo` and the library behind it (aerec.demo)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from aerec.cli import app
from aerec.demo import run_demo, run_toy_demo
from aerec.recommender import Recommender

runner = CliRunner()


# ----------------------------------------------------------------------------- toy
@pytest.fixture(scope="module")
def toy():
    return run_toy_demo(seed=0)


def test_toy_demo_fills_the_nine_blanks(toy):
    assert toy.observed.shape == (11, 6) and int(toy.observed.isna().to_numpy().sum()) == 9
    assert toy.observed.index[0] == "User 1" and toy.observed.index[-1] == "User 11"  # natural order
    assert len(toy.blanks) == 9 and ("User 1", "M3") in toy.blanks
    p = toy.predicted.to_numpy()
    assert p.shape == (11, 6) and np.all((p >= 0) & (p <= 1))
    assert toy.loss == "bce"  # 0/1 data gets binary cross-entropy without being told
    assert toy.accuracy >= 0.9  # it learned the known likes and dislikes


def test_toy_demo_predictions_follow_similar_users(toy):
    # User 8 (0 1 1 . 0 1) matches User 11 (0 1 1 1 0 1) on every shared movie and User 11
    # liked M4; User 5 (0 . 1 1 . 1) matches User 11 too, who disliked M5.
    p = toy.predicted
    assert p.loc["User 8", "M4"] > 0.5
    assert p.loc["User 5", "M5"] < 0.5


def test_toy_demo_is_reproducible(toy):
    again = run_toy_demo(seed=0)
    np.testing.assert_allclose(again.predicted.to_numpy(), toy.predicted.to_numpy(), atol=1e-6)


def test_demo_toy_cli_prints_the_filled_matrix(toy):
    r = runner.invoke(app, ["demo", "--toy"])
    assert r.exit_code == 0, r.output
    before, _, after = r.stdout.partition("the blanks filled in")
    assert after, r.stdout
    assert "User 11" in before and "." in before
    lines = [line for line in after.splitlines() if line.strip().startswith("User")]
    rows = {" ".join(line.split()[:2]): line for line in lines}
    assert len(rows) == 11
    for user, item in toy.blanks:
        assert f"{toy.predicted.loc[user, item]:.2f}" in rows[user], (user, item)
    assert re.search(r"reproduces \d+% of them", r.stdout)


def test_demo_toy_out_saves_a_model(tmp_path):
    r = runner.invoke(app, ["demo", "--toy", "--out", str(tmp_path / "toy")])
    assert r.exit_code == 0, r.output
    model = Recommender.load(tmp_path / "toy")
    assert model.predict(["User 8"], ["M4"])[0] > 0.5
    assert json.loads((tmp_path / "toy" / "metrics.json").read_text())["train_accuracy"] >= 0.9


# ----------------------------------------------------------------------------- synthetic demo
def test_run_demo_small(tmp_path):
    report = run_demo(n_ratings=4000, n_users=200, n_items=100, seed=1, out=tmp_path / "m")
    names = [row.name for row in report.rows]
    assert names == ["aerec autorec", "global mean", "bias baseline", "noise floor"]
    model, mean, bias, floor = (row.rmse for row in report.rows)
    assert report.n_test == 400 and report.metrics["n"] == 400
    assert model < mean and bias < mean and floor < bias
    assert floor == pytest.approx(report.data["noise_floor_rmse"])

    train = report.model.train_csr_
    u = int(report.model.users_.index([report.known_user])[0])
    rated = set(report.model.items_.label(train.indices[train.indptr[u] : train.indptr[u + 1]]).tolist())
    assert report.known_user_count == len(rated)
    assert len(report.known_recs) == 5 and not set(report.known_recs["item"]) & rated
    assert len(report.new_user_ratings) == 5 and set(report.new_user_ratings.values()) == {5.0, 4.0, 2.0, 1.0}
    assert len(report.new_recs) == 5 and not set(report.new_recs["item"]) & set(report.new_user_ratings)

    saved = Recommender.load(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["rmse"] == pytest.approx(model)
    again = saved.recommend(report.known_user, n=5)
    np.testing.assert_allclose(again["score"], report.known_recs["score"], rtol=1e-5)


@pytest.mark.slow
def test_demo_cli_default_prints_the_four_rows_and_recommendations():
    r = runner.invoke(app, ["demo", "--no-progress"])
    assert r.exit_code == 0, r.output
    rows = {}
    for name in ("aerec autorec", "global mean", "bias baseline", "noise floor"):
        line = next((ln for ln in r.stdout.splitlines() if ln.strip().startswith(name)), None)
        assert line is not None, (name, r.stdout)
        rows[name] = float(re.search(r"\d+\.\d{4}", line[len(name) + 2 :]).group())
    # The demo's point: the autoencoder beats the biases, and nothing beats the noise floor.
    assert rows["noise floor"] < rows["aerec autorec"] < rows["bias baseline"] < rows["global mean"]
    assert "top 5 for known user" in r.stdout and "top 5 for the brand-new user" in r.stdout
    assert "Done in" in r.stdout
