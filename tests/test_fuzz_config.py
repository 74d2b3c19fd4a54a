"""Fuzzing the config loader: any TOML file, ``--set`` item or table gives a working config or a
ConfigError; never a traceback from Python, TOML or torch.

The property-based half of ``fuzz/`` (the coverage-guided half is ``fuzz/fuzz_config.py``).
The property goes as far as ``aerec train`` takes a config: the model family resolves it,
then a network is built and trained for one epoch on a toy matrix (``fuzz/targets.py``), so a
value the loader lets through but torch refuses mid-run (a negative momentum, a zero step size,
a seed numpy cannot take) counts as a finding too.

CI runs ``AEREC_FUZZ_EXAMPLES`` examples per target (default 150); for the long runs::

    AEREC_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz_config.py
    python -m fuzz.run_hypothesis -n 10000 --only config
"""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aerec.cli import app
from aerec.config import Config, TrainConfig, load_config
from aerec.errors import ConfigError, TrainingError
from aerec.recommender import Recommender
from aerec.testing import single_thread
from fuzz import strategies as S
from fuzz import targets as T

EXAMPLES = int(os.environ.get("AEREC_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def work():
    folder = T.Workdir()
    yield folder
    folder.close()


# ----------------------------------------------------------------------------- properties
def test_any_toml_file_gives_a_config_or_a_config_error(work):
    @FUZZ
    @given(data=S.toml_text(), sets=st.lists(st.sampled_from(["train.epochs=2", "model.hidden=[3]"]), max_size=2))
    def check(data, sets):
        T.toml_case(work, data, sets)

    check()


def test_any_set_items_give_a_config_or_a_config_error():
    @FUZZ
    @given(items=S.override_lists())
    def check(items):
        T.overrides_case(items)

    check()


def test_any_table_gives_a_config_or_a_config_error():
    @FUZZ
    @given(data=S.config_dicts())
    def check(data):
        T.config_dict_case(data)

    check()


def test_the_fuzzers_reach_configs_that_train():
    """A fuzzer whose inputs all fail early tests nothing: some must get through to training."""
    outcomes = [T.config_dict_case({"model": {"kind": kind, "hidden": [3]}, "train": {"epochs": 5}, "run": {"seed": 1}})
                for kind in ("autorec", "sae", "deep", "dae", "sparse")]
    assert outcomes == ["ok"] * 5


# ----------------------------------------------------------------------------- regressions
# Each finding of the fuzz runs (docs/reliability.md lists them), fixed and pinned here.
@pytest.mark.parametrize("data", [None, [], 3, "model", [["model", {}]]])
def test_a_config_that_is_not_a_table_is_a_config_error(data):
    # Was: TypeError / AttributeError from Config.from_dict.
    with pytest.raises(ConfigError, match="a config is a table"):
        Config.from_dict(data)


@pytest.mark.parametrize("model", [{"preset": [1]}, {"preset": {"a": 1}}, {"hidden": [math.inf]}, {"hidden": [math.nan]}])
def test_model_settings_of_the_wrong_kind_are_config_errors(model):
    # Was: TypeError "unhashable type" (preset) and OverflowError (hidden = [inf]).
    with pytest.raises(ConfigError):
        Recommender(config=Config(model={"kind": "autorec", **model})).resolved()


def test_set_on_a_section_that_is_an_array_of_tables_is_a_config_error(tmp_path):
    # Was: TypeError "list indices must be integers" from apply_overrides.
    path = tmp_path / "c.toml"
    path.write_text("[[train]]\nlr = 0.1\n")
    with pytest.raises(ConfigError, match=r"\[train\] in the config is not a table"):
        load_config(path, ["train.lr=0.01"])


@pytest.mark.parametrize(
    "values, key",
    [({"momentum": -1.0}, "momentum"), ({"weight_decay": math.nan}, "weight_decay"), ({"lr": math.inf}, "lr"),
     ({"lr": 1.6e87}, "lr"), ({"weight_decay": 1e87}, "weight_decay"),
     ({"gamma": 0.0}, "gamma"), ({"gamma": 1.5}, "gamma"), ({"gamma": math.nan}, "gamma"),
     ({"step_size": 0}, "step_size"), ({"lbfgs_iterations": 0}, "lbfgs_iterations"),
     ({"min_delta": -1.0}, "min_delta"), ({"max_grad_norm": math.inf}, "max_grad_norm"),
     ({"checkpoint_every": 0}, "checkpoint_every"), ({"dense_refeeding": -1}, "dense_refeeding")],
)
def test_training_values_torch_would_refuse_mid_run_are_config_errors(values, key):
    # Was: ValueError from torch.optim (momentum, weight decay), ZeroDivisionError from StepLR,
    # RuntimeError "value cannot be converted to type float without overflow" (lr = 1.6e87, atheris).
    with pytest.raises(ConfigError, match=f"train.{key}"):
        TrainConfig(**values)


@pytest.mark.parametrize("run, key", [({"seed": -1}, "seed"), ({"seed": 2**64}, "seed"),
                                      ({"threads": -1}, "threads"), ({"threads": 2**31}, "threads")])
def test_run_values_numpy_or_torch_cannot_take_are_config_errors(run, key):
    # Was: ValueError "expected non-negative integer" (numpy) / "Overflow when unpacking long" (torch).
    with pytest.raises(ConfigError, match=f"run.{key}"):
        Config.from_dict({"run": run})


@pytest.mark.parametrize("args", [["--seed", "-1"], ["--set", "train.step_size=0", "--set", 'train.schedule="step"'],
                                  ["--set", "model.preset=[1]"], ["--set", "run.threads=99999999999"]])
def test_the_command_line_reports_them_with_exit_code_2(tmp_path, args):
    result = CliRunner().invoke(app, ["train", "--data", "toy", "--out", str(tmp_path / "m"), "--epochs", "1",
                                      "--no-progress", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "error:" in result.output


@pytest.mark.parametrize("size", [10**14, 2**63])
def test_a_network_too_large_to_build_is_a_training_error(size):
    # Was: a C++ RuntimeError traceback ("can't allocate memory") or a TypeError ("Overflow").
    config = Config(model={"kind": "autorec", "hidden": [size]}, train={"epochs": 1})
    with single_thread(), pytest.raises(TrainingError, match="does not fit in memory.*smaller model.hidden"):
        Recommender(config=config).fit(T._toy_ratings())
