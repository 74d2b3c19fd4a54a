"""`aerec.tuning.tune` and `aerec tune`: tiny synthetic searches, no test leakage, clear bad-flag errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from aerec.cli import app
from aerec.config import Config, load_config
from aerec.data.splits import random_split
from aerec.data.synthetic import synthetic_ratings
from aerec.errors import AerecError, ConfigError
from aerec.recommender import Recommender
from aerec.tuning import SearchSpace, TuneResult, tune

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytest.importorskip("optuna")

runner = CliRunner()

# Small and fast: a 16-unit AutoRec, 3 epochs, one CPU thread (two threads on a busy 2-core
# machine are ten times slower on matrices this small).
FAST = {"model": {"kind": "autorec", "hidden": [16]}, "train": {"epochs": 3}, "run": {"threads": 1}}
FAST_SETS = ["--set", "model.hidden=[16]", "--set", "train.epochs=3", "--set", "run.threads=1"]


@pytest.fixture(scope="module")
def split():
    ratings = synthetic_ratings(3000, seed=5)
    return random_split(ratings, 0.2, seed=0)


def fast_config(**train) -> Config:
    return Config(model=dict(FAST["model"]), train={**FAST["train"], **train}, run=dict(FAST["run"]))


def pairs(users, items) -> set[tuple]:
    return set(zip(np.asarray(users).tolist(), np.asarray(items).tolist()))


def matrix_pairs(m) -> set[tuple]:
    csr = m.csr
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    return pairs(m.users.label(rows), m.items.label(csr.indices))


def write_csv(ratings, path):
    ratings.frame[["user", "item", "rating"]].to_csv(path, index=False)
    return path


# ----------------------------------------------------------------------------- library
def test_three_trials_write_a_loadable_toml(split, tmp_path):
    seen = []
    result = tune(split.train, config=fast_config(), n_trials=3, seed=0, on_trial=seen.append)
    assert isinstance(result, TuneResult)
    assert [t.number for t in result.trials] == [0, 1, 2] == [t.number for t in seen]
    complete = [t for t in result.trials if t.state == "complete"]
    assert complete and result.best_value == min(t.val_rmse for t in complete)
    assert 0.5 < result.best_value < 2.0
    assert result.validation["ratings"] == round(0.1 * len(split.train))
    assert result.test_metrics is None and result.model is None

    path = tmp_path / "best.toml"
    path.write_text(result.config_toml(), encoding="utf-8")
    loaded = load_config(path)
    assert loaded.to_dict() == result.config.to_dict()
    # The file holds the best trial's searched values and the user's fixed ones.
    best = result.trials[result.best_trial].params
    assert loaded.model["l2"] == pytest.approx(best["model.l2"])
    assert loaded.train["lbfgs_iterations"] == best["train.lbfgs_iterations"]
    assert loaded.model["baseline"] == best["model.baseline"]
    assert loaded.model["hidden"] == [16] and loaded.train["epochs"] == 3 and loaded.run["seed"] == 0
    # ... and trains as is.
    Recommender(config=loaded).fit(split.train)

    frame = result.trials_frame()
    assert list(frame["trial"]) == [0, 1, 2]
    assert {"val_rmse", "best_epoch", "seconds", "model.l2", "train.lbfgs_iterations"} <= set(frame.columns)


def test_search_never_sees_the_test_ratings(split, monkeypatch):
    """Trials train and validate on training cells only; the test loader runs once, after the search."""
    fits: list[tuple[set, set]] = []
    real_fit = Recommender.fit

    def spy_fit(self, train, validation=None, **kw):
        fits.append((matrix_pairs(train) if hasattr(train, "csr") else pairs(train.frame["user"], train.frame["item"]),
                     matrix_pairs(validation) if validation is not None else set()))
        return real_fit(self, train, validation, **kw)

    monkeypatch.setattr(Recommender, "fit", spy_fit)
    finished = []
    loads = []

    def load_test():
        loads.append(len(finished))
        return split.test

    result = tune(split.train, config=fast_config(), n_trials=3, seed=1, test=load_test, on_trial=finished.append)
    assert loads == [3]  # read exactly once, when all three trials were done
    train_cells = pairs(split.train.frame["user"], split.train.frame["item"])
    test_cells = pairs(split.test.frame["user"], split.test.frame["item"])
    assert len(fits) == 4  # three trials, then the refit of the best settings
    for fit_cells, val_cells in fits[:3]:
        assert not (fit_cells | val_cells) & test_cells
        assert not fit_cells & val_cells
        assert fit_cells | val_cells == train_cells
    assert fits[3][0] == train_cells  # the refit uses every training rating
    m = result.test_metrics
    assert m is not None and m["n"] == len(split.test) and 0.5 < m["rmse"] < 2.0


def test_fixed_settings_are_not_searched(split):
    config = fast_config(optimizer="adam")
    config.model["activation"] = "tanh"
    result = tune(split.train, config=config, n_trials=3, seed=0)
    for t in result.trials:
        assert "model.activation" not in t.params and "train.optimizer" not in t.params
        assert {"train.lr", "train.batch_size"} <= set(t.params)  # Adam's branch of the space
        assert "train.lbfgs_iterations" not in t.params
        assert t.epochs <= 3  # derive() left the user's train.epochs alone (Adam would get 100)
    assert result.config.model["activation"] == "tanh" and result.config.train["optimizer"] == "adam"
    assert result.config.train["epochs"] == 3


def test_same_seed_same_search(split):
    a = tune(split.train, config=fast_config(), n_trials=2, seed=3)
    b = tune(split.train, config=fast_config(), n_trials=2, seed=3)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.val_rmse for t in a.trials] == [t.val_rmse for t in b.trials]


def draw_autorec(n: int, fixed=None, seed: int = 0) -> list[dict]:
    optuna = pytest.importorskip("optuna")
    from aerec.tuning import SEARCH_SPACES

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        sp = SearchSpace(trial, fixed or {"model": {}, "train": {}})
        SEARCH_SPACES["autorec"](sp)
        out.append(sp.values)
        study.tell(trial, 1.0)
    return out


def test_autorec_space_is_around_the_defaults():
    drawn = draw_autorec(60)
    for v in drawn:
        m, t = v["model"], v["train"]
        assert set(m) == {"hidden", "l2", "activation", "baseline", "mask_input"}
        assert len(m["hidden"]) == 1 and 300 <= m["hidden"][0] <= 800
        assert 30.0 <= m["l2"] <= 300.0
        assert m["activation"] in ("sigmoid", "elu", "tanh")
        assert "optimizer" not in t  # L-BFGS, the family default, is not searched
        assert t["batch_size"] == 0 and t["lr"] == 1.0
        # Every trial gets the default's budget: 200 iterations, stop 20 iterations after the best.
        it = t["lbfgs_iterations"]
        assert it in (5, 10, 20)
        assert t["epochs"] * it == 200 and t["patience"] == {5: 4, 10: 2, 20: 1}[it]
    # Both values of each switch come up.
    for key in ("baseline", "mask_input"):
        assert {v["model"][key] for v in drawn} == {True, False}
    assert {v["train"]["lbfgs_iterations"] for v in drawn} == {5, 10, 20}


def test_autorec_space_with_a_first_order_optimizer_searches_its_lr():
    for v in draw_autorec(5, {"model": {}, "train": {"optimizer": "adam"}}):
        assert "lbfgs_iterations" not in v["train"] and "optimizer" not in v["train"]
        assert 3e-4 <= v["train"]["lr"] <= 1e-2 and v["train"]["epochs"] == 100


def test_default_params_match_the_family_defaults():
    from aerec.tuning import SEARCH_SPACES, default_params, resolved_config

    config = resolved_config(Config(model={"kind": "autorec"}))
    params = default_params(SEARCH_SPACES["autorec"], {"model": {}, "train": {}}, config)
    assert params == {
        "model.hidden": config.model["hidden"][0], "model.l2": config.model["l2"],
        "model.activation": config.model["activation"], "model.baseline": config.model["baseline"],
        "model.mask_input": config.model["mask_input"], "train.lbfgs_iterations": config.train["lbfgs_iterations"],
    }
    # Fixed settings are not searched, so not enqueued; a default outside a range is left to the sampler.
    fixed = {"model": {"hidden": [16]}, "train": {}}
    outside = Config(model={**config.model, "l2": 5000.0}, train=config.train, run=config.run)
    params = default_params(SEARCH_SPACES["autorec"], fixed, outside)
    assert "model.hidden" not in params and "model.l2" not in params and params["model.activation"] == "sigmoid"


def test_first_trial_is_the_defaults(split):
    from aerec.tuning import resolved_config

    defaults = resolved_config(fast_config())
    result = tune(split.train, config=fast_config(), n_trials=2, seed=4)
    first = result.trials[0]
    assert first.note == "the defaults"
    assert first.params["model.l2"] == defaults.model["l2"]
    assert first.params["model.baseline"] is defaults.model["baseline"]
    assert first.params["train.lbfgs_iterations"] == defaults.train["lbfgs_iterations"]
    assert result.trials[1].params != first.params and result.trials[1].note == ""
    assert result.best_value <= first.val_rmse
    # Without it, the first trial is the sampler's.
    plain = tune(split.train, config=fast_config(), n_trials=1, seed=4, start_from_defaults=False)
    assert plain.trials[0].note == "" and plain.trials[0].params != first.params


def test_sae_space_builds_symmetric_hidden_layers():
    optuna = pytest.importorskip("optuna")
    from aerec.tuning import SEARCH_SPACES

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        sp = SearchSpace(trial, {"model": {}, "train": {}})
        SEARCH_SPACES["sae"](sp)
        hidden = sp.values["model"]["hidden"]
        assert len(hidden) == 3 and hidden[0] == hidden[2] > hidden[1] >= 2
        assert 1e-3 <= sp.values["train"]["lr"] <= 3e-2
        study.tell(trial, 1.0)


def test_pruned_trial_is_recorded_and_raised(split):
    optuna = pytest.importorskip("optuna")
    from aerec.data.matrix import RatingMatrix
    from aerec.tuning import _run_trial

    class AlwaysPrune:
        number, params = 7, {"train.lr": 0.01}
        reports: list = []

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return True

        def set_user_attr(self, key, value):
            pass

    full = RatingMatrix.from_ratings(split.train)
    records: list = []
    trial = AlwaysPrune()
    with pytest.raises(optuna.TrialPruned):
        _run_trial(optuna, trial, fast_config(lbfgs_iterations=4), full, full, records, True, None)
    # Never pruned in the first two epochs; then the step counts L-BFGS iterations (3 epochs x 4).
    assert [r.state for r in records] == ["pruned"] and records[0].epochs == 3
    assert len(trial.reports) == 1 and trial.reports[0][0] == 12
    assert "pruned at epoch 3" in records[0].note


def test_pruning_waits_a_quarter_of_the_epochs_and_counts_work():
    from aerec.tuning import _pruning_plan

    def plan(**train):
        return _pruning_plan(Config(model={"kind": "autorec"}, train=train))

    assert plan() == (5, 10)  # the defaults: 40 epochs of 5 L-BFGS iterations
    assert plan(lbfgs_iterations=20, epochs=10) == (20, 3)
    assert plan(epochs=3) == (5, 2)  # never before the third epoch
    assert plan(optimizer="adam", batch_size=64, lr=1e-3, epochs=100) == (1, 25)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_trials": 0}, "trials"),
        ({"validation": 1.0}, "validation"),
        ({"timeout": -1}, "timeout"),
        ({"kind": "nope"}, "unknown model"),
        ({"seed": -2}, "seed"),
    ],
)
def test_bad_arguments(split, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        tune(split.train, **{"config": fast_config(), **kwargs})


def test_missing_optuna_says_how_to_install(split, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(AerecError, match=r"pip install 'aerec\[tune\]'"):
        tune(split.train, config=fast_config(), n_trials=1)


# ----------------------------------------------------------------------------- CLI
def test_cli_json_out_and_test_read_last(split, tmp_path, monkeypatch):
    import aerec.cli.tune as cli_tune

    train_file = write_csv(split.train, tmp_path / "train.csv")
    test_file = write_csv(split.test, tmp_path / "test.csv")
    events: list[str] = []
    real_read, real_fit = cli_tune._read, Recommender.fit

    def spy_read(source, **options):
        events.append(f"read {source}")
        return real_read(source, **options)

    def spy_fit(self, *a, **kw):
        events.append("fit")
        return real_fit(self, *a, **kw)

    monkeypatch.setattr(cli_tune, "_read", spy_read)
    monkeypatch.setattr(Recommender, "fit", spy_fit)
    out = tmp_path / "tuned"
    r = runner.invoke(app, ["tune", "--train", str(train_file), "--test", str(test_file), "--trials", "3",
                            "--seed", "0", *FAST_SETS, "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    # The training file first, three trial fits and the refit, and only then the test file.
    assert events == [f"read {train_file}", "fit", "fit", "fit", "fit", f"read {test_file}"]

    doc = json.loads(r.stdout)
    assert doc["model"] == "autorec" and len(doc["trials"]) == 3
    assert doc["test"]["n"] == len(split.test) and doc["model_dir"] == str(out)
    assert doc["best"]["val_rmse"] == min(t["val_rmse"] for t in doc["trials"] if t["state"] == "complete")

    best = load_config(out / "best.toml")
    assert best.to_dict() == doc["config"]
    assert len(pd.read_csv(out / "trials.csv")) == 3
    model = Recommender.load(out)
    assert model.config.model["hidden"] == [16]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["rmse"] == pytest.approx(doc["test"]["rmse"])


def test_cli_human_output_prints_toml_on_stdout(tmp_path):
    r = runner.invoke(app, ["tune", "--data", "toy", "--split", "random:0.2", "--trials", "2", *FAST_SETS])
    assert r.exit_code == 0, r.output
    doc = tomllib.loads(r.stdout)
    assert doc["model"]["kind"] == "autorec" and doc["model"]["hidden"] == [16]
    assert "trials by validation RMSE" in r.stderr and "test (best settings refitted" in r.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "exactly one of --data"),
        (["--data", "toy", "--train", "x.csv"], "exactly one of --data"),
        (["--data", "toy", "--trials", "0"], "--trials"),
        (["--data", "toy", "--test", "x.csv"], "--test goes with --train"),
        (["--train", "x.csv", "--split", "u1"], "--split goes with --data"),
        (["--data", "toy", "--split", "bogus:1"], "bad split spec"),
        (["--data", "toy", "--model", "nope"], "top-N models (--implicit): cdae, ease"),
        (["--data", "toy", "--model", "ease"], "tune searches rating models only"),
        (["--data", "toy", "--out", "tests"], "holds something other than an aerec model"),  # before searching
        (["--data", "toy", "--set", "lr=1"], "--set key must be"),
        (["--data", "toy", "--validation", "1.5"], "validation fraction"),
        (["--data", "no/such/file.csv"], "no such file"),
        (["--data", "toy", "--bogus-flag"], "No such option"),
    ],
)
def test_cli_bad_flags_exit_2(args, message):
    r = runner.invoke(app, ["tune", *args])
    assert r.exit_code == 2, r.output
    assert message in r.output


def test_cli_reads_files_with_the_same_reader_flags_as_train(split, tmp_path):
    frame = split.train.frame
    repeated = tmp_path / "repeated.tsv"
    pd.concat([frame, frame.iloc[:3]]).to_csv(repeated, sep="\t", index=False, header=False,
                                              columns=["user", "item", "rating"])
    r = runner.invoke(app, ["tune", "--train", str(repeated), "--trials", "1", *FAST_SETS])
    assert r.exit_code == 2 and "--duplicates last|mean" in r.output  # the flag it names exists
    r = runner.invoke(app, ["tune", "--train", str(repeated), "--trials", "1", "--duplicates", "last",
                            "--columns", "user,item,rating", "--sep", "\t", "--json", *FAST_SETS])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["best"]["trial"] == 0


@pytest.mark.parametrize("kind", ["autorec", "sae", "deep", "dae", "sparse"])
def test_the_defaults_trial_of_every_family_draws_its_resolved_defaults(kind):
    # Trial 0 is labelled "the defaults": every searched setting must equal the family default
    # (sae's layer sizes and weight decay 0 were drawn by the sampler before).
    from aerec.tuning import SEARCH_SPACES, SearchSpace, _DefaultsTrial, default_params, resolved_config

    config = resolved_config(Config(model={"kind": kind}))
    params = default_params(SEARCH_SPACES[kind], {"model": {}, "train": {}}, config)
    drawn = SearchSpace(_DefaultsTrial({}), {"model": {}, "train": {}})
    drawn.trial.suggest_categorical = lambda name, choices: params[name]  # replay the enqueued values
    drawn.trial.suggest_float = lambda name, low, high, **kw: params[name]
    drawn.trial.suggest_int = lambda name, low, high, **kw: params[name]
    SEARCH_SPACES[kind](drawn)
    for section in ("model", "train"):
        for key, value in drawn.values[section].items():
            assert value == config.to_dict()[section][key], (section, key, value)


def test_a_defaults_trial_the_space_cannot_hold_says_what_was_drawn(split, monkeypatch):
    import aerec.tuning as tuning

    real = tuning.default_params

    def without_l2(*args):  # as for a default outside the space's range: the sampler draws it
        return {k: v for k, v in real(*args).items() if k != "model.l2"}

    monkeypatch.setattr(tuning, "default_params", without_l2)
    result = tune(split.train, config=fast_config(), n_trials=1, seed=4)
    assert result.trials[0].note == "the defaults, but model.l2 drawn"
