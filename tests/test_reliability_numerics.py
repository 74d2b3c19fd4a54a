"""NaN and infinity: refused on the way in (exit code 2, naming file, line and value) and caught
during training (exit code 1, saying what to change), through the command line as a user meets
them. The readers' own unit tests are in tests/data/test_malformed.py; these are end to end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aerec.cli import app
from aerec.config import Config
from aerec.data.synthetic import synthetic_ratings
from aerec.errors import DataError, TrainingError
from aerec.recommender import Recommender
from aerec.testing import planted_ratings, single_thread

runner = CliRunner()


def _train(tmp_path: Path, *args: str):
    return runner.invoke(app, ["train", "--out", str(tmp_path / "model"), "--no-progress", *args])


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "3.5e38"])
def test_a_rating_file_with_nan_or_infinity_exits_2_naming_the_line(tmp_path, value):
    ratings = tmp_path / "ratings.csv"
    ratings.write_text(f"user,item,rating\n1,1,4\n1,2,5\n2,1,{value}\n2,2,3\n")
    result = _train(tmp_path, "--train", str(ratings), "--epochs", "1")
    assert result.exit_code == 2, result.output
    assert "ratings.csv:4" in result.output and "NaN or infinite" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "model").exists()


def test_a_test_file_with_nan_exits_2_before_training(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("user,item,rating\n1,1,4\n1,2,5\n2,1,3\n")
    test.write_text("user,item,rating\n2,2,nan\n")
    result = _train(tmp_path, "--train", str(train), "--test", str(test), "--epochs", "1")
    assert result.exit_code == 2 and "test.csv:2" in result.output, result.output


@pytest.mark.parametrize("ratings", ["1=nan", "1=inf", "1=-inf", "1=1e400"])
def test_a_new_users_nan_rating_exits_2(tmp_path, ratings):
    model = _fitted().save(tmp_path / "model")
    result = runner.invoke(app, ["recommend", str(model), "--ratings", ratings.replace("1=", "x0=")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_the_library_refuses_a_new_users_nan_rating():
    model = _fitted()
    for value in (float("nan"), float("inf")):
        with pytest.raises(DataError, match="finite"):
            model.recommend_new({"x0": value})


@pytest.mark.parametrize(
    "args, where",
    [(["--model", "dae", "--set", 'train.optimizer="sgd"', "--lr", "1e5"], "batch"),
     (["--model", "autorec", "--set", "model.l2=1e300"], "L-BFGS")],
)
def test_training_that_diverges_exits_1_saying_what_to_change(tmp_path, args, where):
    result = _train(tmp_path, "--data", "synthetic", "--n-ratings", "2000", "--set", "model.hidden=[8]", "--epochs", "3",
                    *args)
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "the loss became" in text and where in text and "lower train.lr" in text and "max_grad_norm" in text
    assert "Traceback" not in result.output and not (tmp_path / "model").exists()


def test_divergence_is_a_training_error_in_the_library_too():
    config = Config(model={"kind": "dae", "hidden": [8]}, train={"optimizer": "sgd", "lr": 1e5, "epochs": 3})
    with single_thread(), pytest.raises(TrainingError, match=r"lower train.lr \(now 100000.0\)"):
        Recommender(config=config).fit(synthetic_ratings(2000))


def test_a_diverged_run_leaves_no_model_and_a_resumable_checkpoint_state(tmp_path):
    """Divergence stops before saving: no half-trained model directory appears at --out, and
    json output is not printed (stdout stays empty for scripts that parse it)."""
    result = _train(tmp_path, "--data", "synthetic", "--n-ratings", "2000", "--model", "dae", "--set", "model.hidden=[8]",
                    "--set", 'train.optimizer="sgd"', "--lr", "1e5", "--epochs", "3", "--json")
    assert result.exit_code == 1
    assert not (tmp_path / "model").exists()
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout or "")


_MODEL = None


def _fitted() -> Recommender:
    global _MODEL
    if _MODEL is None:
        config = Config(model={"kind": "autorec", "hidden": [8], "l2": 1.0}, train={"epochs": 2, "lbfgs_iterations": 3})
        with single_thread():
            _MODEL = Recommender(config=config).fit(planted_ratings().train)
    return _MODEL
