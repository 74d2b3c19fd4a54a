"""`aerec train | evaluate | predict | recommend` through Typer's CliRunner, on small data.

Every training run here is tiny (a few thousand synthetic ratings or the 57-cell toy, one or two
epochs, one thread), so the file runs in seconds; the MovieLens test is marked slow.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from aerec.cli import app
from aerec.cli.models import default_checkpoint_dir, parse_new_user_ratings
from aerec.data.synthetic import synthetic_ratings
from aerec.errors import DataError
from aerec.recommender import Recommender
from tests.cli import ok, run, runner
from tests.conftest import needs_ml100k

N = 2000  # synthetic ratings for the shared model
FAST = ("--set", "train.epochs=2", "--threads", "1", "--no-progress")
METRIC_KEYS = {"rmse", "mae", "n", "n_fallback", "rmse_per_user", "precision@10", "recall@10", "ndcg@10",
               "relevant_from", "n_ranked_users"}
EVALUATE_KEYS = METRIC_KEYS | {"fallback_fraction", "n_unknown_users", "n_unknown_items"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One model trained on synthetic data with a 20 % random test split: (dir, train --json)."""
    out = tmp_path_factory.mktemp("models") / "m"
    r = ok("train", "--data", "synthetic", "--n-ratings", N, "--split", "random:0.2", *FAST, "--out", out, "--json")
    return out, json.loads(r.stdout)


@pytest.fixture(scope="module")
def train_part():
    """The ratings the shared model trained on (the same seeded split the CLI made)."""
    from aerec.data.splits import random_split

    return random_split(synthetic_ratings(N), 0.2, seed=0).train.frame


# ----------------------------------------------------------------------------- train
def test_train_json_metrics_and_model_dir(trained):
    out, doc = trained
    assert METRIC_KEYS <= set(doc) and doc["out"] == str(out)
    assert doc["n"] == N // 5 and doc["n_train"] == N - N // 5
    assert doc["model"] == "autorec" and doc["epochs_run"] == 2 and doc["best_epoch"] in (1, 2)
    for key in ("rmse", "mae", "rmse_per_user", "best_val_rmse", "fit_seconds"):
        assert isinstance(doc[key], float) and math.isfinite(doc[key]), key
    assert 0.5 < doc["rmse"] < 1.5 and doc["mae"] < doc["rmse"]
    for name in ("model.json", "model.safetensors", "metrics.json", "history.csv", "config.toml"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == {k: v for k, v in doc.items() if k != "out"}
    assert not default_checkpoint_dir(out).exists()  # the default checkpoint goes once the model is saved


def test_train_human_summary_goes_to_stderr(tmp_path):
    r = ok("train", "--data", "toy", *FAST, "--out", tmp_path / "m")
    assert r.stdout == ""
    assert "aerec train" in r.stderr and "validation RMSE" in r.stderr
    assert "none (add --split SPEC or --test FILE" in r.stderr  # no test set, no test figures


def test_torch_beta_notices_of_the_sparse_path_are_not_shown(tmp_path):
    """The sparse path builds torch sparse CSR tensors, which warn once that they are "beta";
    the CLI shows the library's warnings, but that one says nothing to a user."""
    r = ok("train", "--data", "synthetic", "--n-ratings", N, *FAST, "--set", "train.batch_format=sparse",
           "--out", tmp_path / "m")
    assert "warning:" not in r.stderr, r.stderr


def test_train_without_test_set_json_has_null_metrics(tmp_path):
    doc = json.loads(ok("train", "--data", "toy", *FAST, "--out", tmp_path / "m", "--json").stdout)
    assert all(doc[k] is None for k in METRIC_KEYS) and doc["n_train"] == 57


def test_train_and_test_files_read_alike(tmp_path):
    ratings = synthetic_ratings(1500, seed=3).frame[["user", "item", "rating"]]
    train, test = ratings.iloc[:1200], ratings.iloc[1200:]
    train.to_csv(tmp_path / "train.tsv", sep="\t", index=False, header=False)
    test.to_csv(tmp_path / "test.tsv", sep="\t", index=False, header=False)
    doc = json.loads(ok("train", "--train", tmp_path / "train.tsv", "--test", tmp_path / "test.tsv",
                        *FAST, "--out", tmp_path / "m", "--json").stdout)
    assert doc["n"] == 300 and doc["n_train"] == 1200 and math.isfinite(doc["rmse"])
    assert doc["test"] == str(tmp_path / "test.tsv")

    # The test file is read on the training data's scale: a 7 on a 1..5 scale names its line.
    bad = test.copy()
    bad.iloc[4, 2] = 7
    bad.to_csv(tmp_path / "bad.tsv", sep="\t", index=False, header=False)
    r = run("train", "--train", tmp_path / "train.tsv", "--test", tmp_path / "bad.tsv", *FAST,
            "--out", tmp_path / "m2")
    assert r.exit_code == 2, r.output
    assert f"{tmp_path / 'bad.tsv'}:5" in r.stderr and "Traceback" not in r.output


def test_malformed_training_file_exits_2_naming_file_and_line(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("user,item,rating\n1,1,4\n1,2,3\n2,1,abc\n2,2,5\n")
    r = run("train", "--train", f, "--out", tmp_path / "m")
    assert r.exit_code == 2, r.output
    assert f"{f}:4" in r.stderr and "abc" in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "m").exists()


def test_implicit_data_without_a_model_trains_the_implicit_default(tmp_path):
    f = tmp_path / "events.csv"
    f.write_text("".join(f"{u},{i}\n" for u in range(1, 6) for i in range(1, 5)))
    r = run("train", "--train", f, "--threads", "1", "--no-progress", "--out", tmp_path / "m", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model"] == "easedae"  # tests/test_cli_implicit.py covers the rest


@pytest.mark.parametrize(
    "args, message",
    [
        (("--data", "toy", "--train", "x.csv"), "not both"),
        ((), "say what to train on"),
        (("--data", "toy", "--test", "x.csv"), "--test goes with --train"),
        (("--train", "x.csv", "--test", "y.csv", "--split", "random:0.1"), "give one of them"),
        (("--data", "toy", "--online", "--batch-size", "8"), "contradicts --batch-size 8"),
        (("--data", "toy", "--online"), "train.optimizer=adam"),  # L-BFGS cannot go one row at a time
        (("--data", "toy", "--model", "nope"), "unknown model"),
        (("--data", "toy", "--set", "epochs=3"), "train.lr=0.01"),
        (("--data", "toy", "--set", "train.nope=3"), "unknown key"),
        (("--data", "toy", "--split", "bogus:1"), "bad split spec"),
        (("--data", "toy", "--n-ratings", "50"), "--data synthetic"),
        (("--data", "toy", "--taste", "1"), "--taste only applies to --data synthetic"),
        (("--data", "synthetic", "--taste", "-1"), "--taste must be a number >= 0"),
        (("--data", "toy", "--device", "tpu"), "run.device"),
        (("--data", "ml-10k"), "Did you mean"),
    ],
)
def test_bad_train_flags_exit_2_saying_what_to_use(tmp_path, args, message):
    r = run("train", *args, "--out", tmp_path / "m")
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.output


def test_missing_out_is_a_usage_error(tmp_path):
    assert run("train", "--data", "toy").exit_code == 2


def test_out_that_is_not_a_model_dir_is_refused_before_training(tmp_path):
    keep = tmp_path / "documents"
    keep.mkdir()
    (keep / "thesis.txt").write_text("precious")
    r = run("train", "--data", "toy", "--out", keep)
    assert r.exit_code == 2 and "choose a new or empty folder" in r.stderr
    assert (keep / "thesis.txt").read_text() == "precious"
    r = run("train", "--data", "toy", "--out", keep / "thesis.txt")
    assert r.exit_code == 2 and "is a file" in r.stderr
    r = runner.invoke(app, ["demo", "--toy", "--out", str(keep)])
    assert r.exit_code == 2 and (keep / "thesis.txt").is_file()


# ----------------------------------------------------------------------------- config precedence
def _saved(out) -> dict:
    return json.loads((out / "model.json").read_text())


def test_config_file_then_flags_then_set(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        '[model]\nkind = "autorec"\nhidden = [7]\n\n[train]\nepochs = 3\nvalidation = 0.1\n\n[run]\nseed = 4\n'
    )
    base = ("train", "--data", "toy", "--config", cfg, "--threads", "1", "--no-progress")

    ok(*base, "--out", tmp_path / "a")
    a = _saved(tmp_path / "a")
    assert a["train"]["epochs"] == 3 and a["model"]["hidden"] == [7] and a["run"]["seed"] == 4
    assert a["train"]["validation"] == 0.1

    ok(*base, "--epochs", "2", "--seed", "5", "--out", tmp_path / "b")  # flags beat the file
    b = _saved(tmp_path / "b")
    assert b["train"]["epochs"] == 2 and b["run"]["seed"] == 5 and b["model"]["hidden"] == [7]

    ok(*base, "--epochs", "2", "--set", "train.epochs=1", "--set", "model.hidden=[5]", "--out", tmp_path / "c")
    c = _saved(tmp_path / "c")  # --set beats both
    assert c["train"]["epochs"] == 1 and c["model"]["hidden"] == [5]
    assert len(pd.read_csv(tmp_path / "c" / "history.csv")) == 1


def test_shortcut_flags_map_onto_the_config(tmp_path):
    ok("train", "--data", "toy", "--model", "sae", "--set", "model.hidden=[4,2,4]", "--online", "--epochs", "1",
       "--lr", "0.02", "--seed", "9", "--device", "cpu", "--threads", "1", "--no-progress", "--out", tmp_path / "m")
    m = _saved(tmp_path / "m")
    assert m["kind"] == "sae" and m["model"]["hidden"] == [4, 2, 4]
    assert (m["train"]["batch_size"], m["train"]["epochs"], m["train"]["lr"]) == (1, 1, 0.02)
    assert (m["run"]["seed"], m["run"]["device"], m["run"]["threads"]) == (9, "cpu", 1)

    ok("train", "--data", "toy", "--preset", "u-autorec", *FAST, "--out", tmp_path / "p")
    assert _saved(tmp_path / "p")["model"]["orientation"] == "user"  # the preset of the default family


def test_bad_config_file_exits_2(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[train\nepochs = 3\n")
    r = run("train", "--data", "toy", "--config", cfg, "--out", tmp_path / "m")
    assert r.exit_code == 2 and "not valid TOML" in r.stderr
    r = run("train", "--data", "toy", "--config", tmp_path / "none.toml", "--out", tmp_path / "m")
    assert r.exit_code == 2 and "does not exist" in r.stderr


# ----------------------------------------------------------------------------- resume
def test_resume_continues_to_the_same_numbers(tmp_path):
    # --model autorec: one network (on this thin data the default would blend two; next test).
    data = ("--data", "synthetic", "--n-ratings", "1500", "--model", "autorec", "--threads", "1", "--no-progress")
    ok("train", *data, "--epochs", "3", "--out", tmp_path / "full")
    ckpt = tmp_path / "ckpt"
    ok("train", *data, "--epochs", "2", "--checkpoint-dir", ckpt, "--out", tmp_path / "part")
    assert (ckpt / "latest").is_dir()  # an explicit checkpoint folder is kept
    ok("train", *data, "--epochs", "3", "--checkpoint-dir", ckpt, "--resume", "--out", tmp_path / "resumed")

    full = pd.read_csv(tmp_path / "full" / "history.csv")
    resumed = pd.read_csv(tmp_path / "resumed" / "history.csv")
    assert list(resumed["epoch"]) == [1, 2, 3]
    np.testing.assert_allclose(resumed["loss"], full["loss"], rtol=1e-4)
    np.testing.assert_allclose(resumed["val_rmse"], full["val_rmse"], rtol=1e-4)

    # A checkpoint of another run, or none at all, is refused with a way out.
    r = run("train", *data, "--epochs", "3", "--set", "model.hidden=[20]", "--checkpoint-dir", ckpt, "--resume",
            "--out", tmp_path / "other")
    assert r.exit_code == 2 and "different run" in r.stderr and "model" in r.stderr
    r = run("train", *data, "--checkpoint-dir", tmp_path / "empty", "--resume", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "no checkpoint" in r.stderr
    assert not (tmp_path / "empty").exists()  # refused before anything was written
    r = run("train", *data, "--resume", "--out", tmp_path / "y")  # the default checkpoint folder
    assert r.exit_code == 2 and "no checkpoint" in r.stderr and not (tmp_path / ".y.ckpt").exists()


def test_only_a_named_checkpoint_folder_is_sure_to_get_the_last_epochs(tmp_path, monkeypatch):
    # Into the default folder, deleted once the model is saved, the time budget alone decides
    # (a short fit writes none); a folder the user named always gets the last epoch's.
    from aerec.training import Trainer

    asked = []
    init = Trainer.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if self.checkpoint_dir is not None:
            asked.append((self.checkpoint_dir.name, self.final_checkpoint))

    monkeypatch.setattr(Trainer, "__init__", spy)
    data = ("--data", "synthetic", "--n-ratings", "1500", "--model", "autorec", "--epochs", "2", "--threads", "1",
            "--no-progress")
    ok("train", *data, "--out", tmp_path / "plain")
    ok("train", *data, "--checkpoint-dir", tmp_path / "named", "--out", tmp_path / "kept")
    assert asked == [(".plain.ckpt", False), ("named", True)]
    assert not (tmp_path / ".plain.ckpt").exists() and (tmp_path / "named" / "latest").is_dir()


def test_the_thin_data_default_blend_checkpoints_each_member_and_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    from aerec.training import Trainer

    data = ("--data", "synthetic", "--n-ratings", "1500", "--split", "random:0.2", "--threads", "1", "--no-progress",
            "--json")
    full = json.loads(ok("train", *data, "--epochs", "3", "--out", tmp_path / "full").stdout)
    ckpt = tmp_path / "ckpt"
    ok("train", *data, "--epochs", "2", "--checkpoint-dir", ckpt, "--out", tmp_path / "part")
    assert (ckpt / "member0" / "latest").is_dir() and (ckpt / "member1" / "latest").is_dir()
    loaded = []
    load = Trainer._load_checkpoint
    monkeypatch.setattr(Trainer, "_load_checkpoint", lambda self, *a: loaded.append(self.checkpoint_dir) or load(self, *a))
    resumed = json.loads(ok("train", *data, "--epochs", "3", "--checkpoint-dir", ckpt, "--resume",
                            "--out", tmp_path / "resumed").stdout)
    assert sorted(p.name for p in loaded) == ["member0", "member1"]  # each member went on from its own
    assert full["preset"] == resumed["preset"] == "blend"
    assert resumed["rmse"] == pytest.approx(full["rmse"], rel=1e-5)
    assert resumed["best_val_rmse"] == pytest.approx(full["best_val_rmse"], rel=1e-5)


def test_a_bagged_ensemble_checkpoints_each_fit_and_resumes_to_the_same_numbers(tmp_path):
    data = ("--data", "synthetic", "--n-ratings", "1500", "--split", "random:0.2", "--threads", "1", "--no-progress",
            "--json", "--preset", "blend", "--set", "model.bags=2")
    full = json.loads(ok("train", *data, "--epochs", "3", "--out", tmp_path / "full").stdout)
    ckpt = tmp_path / "ckpt"
    ok("train", *data, "--epochs", "2", "--checkpoint-dir", ckpt, "--out", tmp_path / "part")
    assert (ckpt / "bag0" / "member0" / "latest").is_dir() and (ckpt / "bag1" / "member1" / "latest").is_dir()
    resumed = json.loads(ok("train", *data, "--epochs", "3", "--checkpoint-dir", ckpt, "--resume",
                            "--out", tmp_path / "resumed").stdout)
    assert full["preset"] == resumed["preset"] == "blend"
    assert resumed["rmse"] == pytest.approx(full["rmse"], rel=1e-5)


# ----------------------------------------------------------------------------- evaluate
def test_evaluate_json_on_the_training_split(trained):
    out, doc = trained
    r = ok("evaluate", out, "--data", "synthetic", "--n-ratings", N, "--split", "random:0.2", "--json")
    metrics = json.loads(r.stdout)
    assert set(metrics) == EVALUATE_KEYS
    assert metrics["n"] == N // 5 and metrics["n_fallback"] >= 0
    assert all(math.isfinite(metrics[k]) for k in ("rmse", "mae", "rmse_per_user"))
    assert metrics["rmse"] == pytest.approx(doc["rmse"], rel=1e-6)  # the same split, seeded as in training
    assert "not trained on this split" not in r.stderr


def test_evaluate_on_another_split_warns_and_prints_a_table(trained):
    out, _ = trained
    r = ok("evaluate", out, "--data", "synthetic", "--n-ratings", N, "--split", "random:0.2:seed=7")
    # The table is the result: stdout (`> file` keeps it); the warning is a message: stderr.
    assert "RMSE per user" in r.stdout and "RMSE per user" not in r.stderr
    assert "not trained on this split" in r.stderr and "not trained on this split" not in r.stdout


def test_evaluate_test_file(trained, tmp_path):
    out, _ = trained
    f = tmp_path / "t.csv"
    f.write_text("user,item,rating\n1,1,4\n2,3,2\n999999,1,5\n")
    metrics = json.loads(ok("evaluate", out, "--test", f, "--json").stdout)
    assert metrics["n"] == 3 and metrics["n_fallback"] >= 1  # user 999999 is unknown


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "either --test FILE or --data NAME --split SPEC"),
        (("--data", "synthetic"), "--data needs --split"),
        (("--test", "t.csv", "--data", "toy", "--split", "random:0.1"), "either --test"),
    ],
)
def test_bad_evaluate_flags_exit_2(trained, args, message):
    r = run("evaluate", trained[0], *args)
    assert r.exit_code == 2 and message in r.stderr


@pytest.mark.parametrize("command", [
    ("evaluate", "--test", "t.csv"), ("predict", "--pairs", "p.csv"), ("recommend", "--user", "1"),
])
def test_missing_model_dir_exits_2(tmp_path, command):
    r = run(command[0], tmp_path / "nowhere", *command[1:])
    assert r.exit_code == 2 and "not a model directory" in r.stderr and "aerec train" in r.stderr


def test_damaged_model_dir_exits_2(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes()[:-10])
    r = run("recommend", copy, "--user", "1")
    assert r.exit_code == 2 and "checksum" in r.stderr


# ----------------------------------------------------------------------------- predict
def test_predict_pairs_to_stdout_and_file(trained, tmp_path):
    out, _ = trained
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item\n1,1\n2,3\n999999,1\n1,777777\n1,1\n")  # a pair asked twice: answered twice
    r = ok("predict", out, "--pairs", pairs)
    frame = pd.read_csv(io.StringIO(r.stdout))
    assert list(frame.columns) == ["user", "item", "prediction", "fallback"]
    assert frame["user"].tolist() == [1, 2, 999999, 1, 1] and frame["fallback"].tolist() == [0, 0, 1, 1, 0]
    assert frame["prediction"].between(1, 5).all()
    expected = Recommender.load(out).predict([1, 2, 999999, 1, 1], [1, 3, 1, 777777, 1])
    np.testing.assert_allclose(frame["prediction"], expected, atol=1e-4)

    target = tmp_path / "sub" / "pred.csv"
    r = ok("predict", out, "--pairs", pairs, "--out", target)
    assert r.stdout == "" and "5 predictions (2 by fallback)" in r.stderr
    assert pd.read_csv(target).equals(frame)
    assert sorted(p.name for p in target.parent.iterdir()) == ["pred.csv"]  # no temp file left


def test_predict_accepts_a_headerless_ratings_file(trained, tmp_path):
    out, _ = trained
    (tmp_path / "pairs.tsv").write_text("1\t1\n2\t3\n")
    (tmp_path / "ratings.tsv").write_text("1\t1\t5\t881250949\n2\t3\t1\t881250950\n")
    a = ok("predict", out, "--pairs", tmp_path / "pairs.tsv").stdout
    b = ok("predict", out, "--pairs", tmp_path / "ratings.tsv").stdout
    assert a == b and len(a.splitlines()) == 3


def test_predict_bad_pairs_file_exits_2(trained, tmp_path):
    r = run("predict", trained[0], "--pairs", tmp_path / "none.csv")
    assert r.exit_code == 2 and "none.csv" in r.stderr


# ----------------------------------------------------------------------------- recommend
def test_recommend_known_user_leaves_out_rated_items(trained, train_part):
    out, _ = trained
    user = int(train_part["user"].iloc[0])
    rated = set(train_part.loc[train_part["user"] == user, "item"])
    doc = json.loads(ok("recommend", out, "--user", user, "-n", "5", "--json").stdout)
    assert doc["user"] == user and len(doc["recommendations"]) == 5
    items = [r["item_id"] for r in doc["recommendations"]]
    assert not set(items) & rated
    scores = [r["score"] for r in doc["recommendations"]]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)  # relevance
    assert all(1 <= r["prediction"] <= 5 for r in doc["recommendations"])  # the predicted rating beside it
    assert all(r["title"] is None for r in doc["recommendations"])  # synthetic items have no titles

    n_items = train_part["item"].nunique()
    every = json.loads(ok("recommend", out, "--user", user, "-n", "100000", "--json").stdout)
    with_rated = json.loads(ok("recommend", out, "--user", user, "-n", "100000", "--include-rated", "--json").stdout)
    assert len(every["recommendations"]) == n_items - len(rated)
    assert len(with_rated["recommendations"]) == n_items
    assert rated <= {r["item_id"] for r in with_rated["recommendations"]}


def test_recommend_table(trained):
    r = ok("recommend", trained[0], "--user", "1", "-n", "3")
    assert "top 3 for user 1" in r.stdout and "rank" in r.stdout and "score" in r.stdout
    assert "title" not in r.stdout  # no titles, no title column


def test_recommend_new_user_inline_and_file_agree(trained, train_part, tmp_path):
    out, _ = trained
    popular = train_part["item"].value_counts().index[:3].tolist()
    given = {popular[0]: 5, popular[1]: 4, popular[2]: 1}
    inline = ",".join(f"{i}={r}" for i, r in given.items())
    a = json.loads(ok("recommend", out, "--ratings", inline, "-n", "5", "--json").stdout)
    f = tmp_path / "me.csv"
    f.write_text("item,rating\n" + "".join(f"{i},{r}\n" for i, r in given.items()))
    b = json.loads(ok("recommend", out, "--ratings", f, "-n", "5", "--json").stdout)
    assert a == b and a["user"] is None and a["ratings_given"] == 3
    assert len(a["recommendations"]) == 5 and not {r["item_id"] for r in a["recommendations"]} & set(given)


def test_recommend_new_user_unknown_item_warns(trained):
    r = ok("recommend", trained[0], "--ratings", "1=5,88888888=3", "--json")
    assert "does not know" in r.stderr and "88888888" in r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["recommendations"]) == 10 and doc["ratings_given"] == 1  # the one the model knows
    table = ok("recommend", trained[0], "--ratings", "1=5,88888888=3")
    title = " ".join(table.stdout.split())
    assert "a new user with 1 rating" in title and "1 ratings" not in title


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "got none of them"),
        (("--user", "1", "--ratings", "1=5"), "got two of them"),
        (("--ratings", "1=5,1=2"), "rates one item twice"),
        (("--ratings", "1=5", "--include-rated"), "--include-rated goes with --user"),
        (("--user", "1", "-n", "0"), "-n must be a positive"),
        (("--user", "123456789"), "unknown user"),
        (("--ratings", "1=five"), "item=rating"),
        (("--ratings", "nothing-here"), "neither a file nor"),
        (("--ratings", "1=9"), "outside the model's scale"),
    ],
)
def test_bad_recommend_flags_exit_2(trained, args, message):
    r = run("recommend", trained[0], *args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.output


def test_parse_new_user_ratings(tmp_path):
    assert parse_new_user_ratings("50=5, 172=4.5,Toy Story=1") == {"50": 5.0, "172": 4.5, "Toy Story": 1.0}
    f = tmp_path / "lines.tsv"
    f.write_text("7\t50\t5\t881250949\n7\t172\t3\t881250950\n")  # lines cut from a ratings file
    assert parse_new_user_ratings(str(f)) == {"50": 5.0, "172": 3.0}
    f.write_text("7\t50\t5\n8\t172\t3\n")
    with pytest.raises(DataError, match=r"lines.tsv:2: .*more than one user"):
        parse_new_user_ratings(str(f))
    f.write_text("item,rating\n50,5\n50,1\n")
    with pytest.raises(DataError, match=r"lines.tsv:3: the file rates one item twice"):
        parse_new_user_ratings(str(f))
    f.write_text("item rating\n50 5\n172 x\n")
    with pytest.raises(DataError, match=r"lines.tsv:3: the rating is not a number"):
        parse_new_user_ratings(str(f))


# ----------------------------------------------------------------------------- MovieLens
@needs_ml100k
@pytest.mark.slow
def test_ml100k_u1_wiring(ml100k_dir, tmp_path):
    out = tmp_path / "ml"
    doc = json.loads(ok(
        "train", "--train", ml100k_dir / "u1.base", "--test", ml100k_dir / "u1.test", "--epochs", "1",
        "--set", "model.hidden=[50]", "--threads", "1", "--no-progress", "--out", out, "--json",
    ).stdout)
    assert doc["n_train"] == 80_000 and doc["n"] == 20_000 and doc["n_fallback"] > 0
    assert 0.85 < doc["rmse"] < 1.2
    again = json.loads(ok("evaluate", out, "--test", ml100k_dir / "u1.test", "--json").stdout)
    assert again["rmse"] == pytest.approx(doc["rmse"], rel=1e-6)
    recs = json.loads(ok("recommend", out, "--user", "196", "-n", "3", "--json").stdout)["recommendations"]
    assert len(recs) == 3 and all(r["title"] for r in recs)  # titles from u.item next to the file


def test_a_rating_model_is_never_judged_against_events(trained, tmp_path):
    # A file with no rating column reads as events (every rating 1.0): an RMSE against it would
    # be a made-up figure, so train --test and evaluate --test both refuse it, train before fitting.
    out, _ = trained
    clicks = tmp_path / "clicks.csv"
    clicks.write_text("user,item\n1,1\n2,2\n")
    small = tmp_path / "small.csv"
    synthetic_ratings(500).frame.to_csv(small, index=False)
    for args in (("evaluate", out, "--test", clicks), ("train", "--train", small, "--test", clicks, *FAST,
                                                         "--out", tmp_path / "never")):
        r = run(*args)
        assert r.exit_code == 2, r.output
        assert "holds events (no rating column)" in " ".join(r.output.split())
    assert not (tmp_path / "never").exists()
    from aerec import evaluate_ratings, load_dataset, load_model

    with pytest.raises(DataError, match="holds events"):
        evaluate_ratings(load_model(out), load_dataset(clicks))


@pytest.mark.parametrize("model", [[], ["--implicit", "--model", "multdae"]])
def test_a_cuda_device_on_a_machine_without_one_exits_2_before_writing(tmp_path, monkeypatch, model):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = run("train", "--data", "toy", *model, "--device", "cuda", "--out", tmp_path / "m")
    assert r.exit_code == 2 and "no CUDA device is available" in r.stderr, r.output
    assert list(tmp_path.iterdir()) == []  # no model, no checkpoint folder
