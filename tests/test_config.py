"""Configuration: TOML files, --set overrides, precedence, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from aerec.config import (
    Config,
    RunConfig,
    TrainConfig,
    apply_overrides,
    build_train_config,
    load_config,
    parse_value,
)
from aerec.errors import ConfigError
from aerec.registry import get_family
from aerec.recommender import Recommender

EXAMPLE = """\
[model]
kind = "sae"
hidden = [30, 10, 30]
activation = "tanh"

[train]
optimizer = "adam"
lr = 0.005
epochs = 5

[run]
seed = 3
device = "cpu"
"""


@pytest.fixture
def toml_file(tmp_path) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    return path


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- files
def test_a_toml_file_loads_into_its_three_parts(toml_file):
    config = load_config(toml_file)
    assert config.kind == "sae"
    assert config.model == {"kind": "sae", "hidden": [30, 10, 30], "activation": "tanh"}
    assert config.train == {"optimizer": "adam", "lr": 0.005, "epochs": 5}
    assert config.resolve_run() == RunConfig(seed=3, device="cpu", threads=0)
    params, train, _ = Recommender(config=config).resolved()
    assert params.hidden == [30, 10, 30] and params.activation == "tanh" and params.orientation == "user"
    assert (train.optimizer, train.lr, train.epochs) == ("adam", 0.005, 5)


def test_a_config_is_saved_back_unchanged(toml_file, tmp_path):
    config = load_config(toml_file)
    again = load_config(_write(tmp_path, config.to_toml()))
    assert again.to_dict() == config.to_dict()


def test_no_file_and_no_overrides_is_the_default():
    config = load_config()
    assert config.kind == "autorec" and config.train == {} and config.resolve_run() == RunConfig()


def test_a_missing_or_broken_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"c\.toml: not valid TOML"):
        load_config(_write(tmp_path, "[train\nlr = 1"))


# ----------------------------------------------------------------------------- --set
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("300", 300), ("1e-3", 0.001), ("0.5", 0.5), ("-2", -2), ("[500, 500]", [500, 500]),
        ("true", True), ("false", False), ("adam", "adam"), ('"quoted text"', "quoted text"),
        ("cuda:1", "cuda:1"), ("plain words", "plain words"),
    ],
)
def test_set_values_parse_as_toml_or_else_text(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_overrides_set_dotted_keys_without_touching_the_input():
    data = {"train": {"lr": 0.1}}
    out = apply_overrides(data, ["train.lr=0.01", "model.hidden=[64, 32, 64]", "run.seed = 7", "model.kind=deep"])
    assert out == {"train": {"lr": 0.01}, "model": {"hidden": [64, 32, 64], "kind": "deep"}, "run": {"seed": 7}}
    assert data == {"train": {"lr": 0.1}}


@pytest.mark.parametrize("bad", ["lr=0.1", "train.lr", "optim.lr=1", "train.=1", "train.a.b=1"])
def test_malformed_overrides_are_explained(bad):
    with pytest.raises(ConfigError, match="--set"):
        apply_overrides({}, [bad])


# ----------------------------------------------------------------------------- precedence
def test_set_overrides_the_file(toml_file):
    config = load_config(toml_file, ["train.lr=0.5", "model.hidden=[7, 3, 7]", "run.seed=9"])
    params, train, run = Recommender(config=config).resolved()
    assert train.lr == 0.5 and params.hidden == [7, 3, 7] and run.seed == 9
    assert train.epochs == 5 and params.activation == "tanh"  # untouched file values stay


def test_family_defaults_then_preset_then_user_values():
    family = get_family("sae")
    course = family.presets["course"]["train"]
    # Family defaults alone.
    _, train, _ = Recommender("sae").resolved()
    assert train.batch_size == family.train["batch_size"]
    # The preset overrides the family.
    _, train, _ = Recommender("sae", preset="course").resolved()
    assert (train.batch_size, train.weight_decay, train.loss_normalization) == (1, 0.5, "all") == (
        course["batch_size"], course["weight_decay"], course["loss_normalization"],
    )
    # The user's values override the preset, key by key.
    config = Config(model={"kind": "sae", "preset": "course", "hidden": [40, 20, 40]}, train={"batch_size": 16})
    params, train, _ = Recommender(config=config).resolved()
    assert train.batch_size == 16 and train.weight_decay == 0.5 and params.hidden == [40, 20, 40]
    # A model preset works the same way.
    assert Recommender("autorec", preset="u-autorec").resolved()[0].orientation == "user"
    assert Recommender("autorec", preset="u-autorec", orientation="item").resolved()[0].orientation == "item"


# ----------------------------------------------------------------------------- unknown keys
def test_unknown_keys_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.toml \[train\]: unknown key\(s\) \['lr2'\]"):
        load_config(_write(tmp_path, "[train]\nlr2 = 0.1\n"))
    with pytest.raises(ConfigError, match=r"unknown section\(s\) \['training'\]"):
        load_config(_write(tmp_path, "[training]\nlr = 0.1\n"))
    with pytest.raises(ConfigError, match=r"\[run\]: unknown key\(s\) \['gpu'\]"):
        load_config(None, ["run.gpu=1"])
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['hidden_size'\]"):
        Recommender("autorec", hidden_size=10).resolved()
    with pytest.raises(ConfigError, match="unknown model 'vae2'; rating models: autorec"):
        Recommender("vae2")
    with pytest.raises(ConfigError, match="no preset 'fast'; its presets: course"):
        Recommender("sae", preset="fast").resolved()


# ----------------------------------------------------------------------------- types and values
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("train.lr='fast'", r"lr must be a number; got 'fast'"),
        ("train.epochs=2.5", r"epochs must be a whole number; got 2.5"),
        ("train.batch_size=true", r"batch_size must be a whole number; got True"),
        ("train.optimizer=adagrad", r"train.optimizer must be one of .*got 'adagrad'"),
        ("train.optimizer=3", r"optimizer must be text; got 3"),
        ("train.lr=0", r"train.lr must be > 0; got 0.0"),
        ("train.lr=nan", r"train.lr must be > 0; got nan"),
        ("train.validation=1", r"train.validation must be in \[0, 1\); got 1.0"),
        ("train.epochs=0", r"train.epochs must be >= 1; got 0"),
        ("train.schedule=linear", r"train.schedule must be"),
        ("run.device=tpu", r"run.device must be cpu, cuda or auto; got 'tpu'"),
        ("run.seed=[1]", r"seed must be a whole number"),
    ],
)
def test_bad_train_and_run_values_are_named(setting, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [setting])


def test_whole_floats_are_accepted_as_whole_numbers():
    assert build_train_config({"epochs": 3.0, "lr": 1}) == TrainConfig(epochs=3, lr=1.0)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"l2": "strong"}, r"model.l2 must be a number; got 'strong'"),
        ({"tied": 1}, r"model.tied must be true or false; got 1"),
        ({"activation": 3}, r"model.activation must be text; got 3"),
        ({"hidden": ["wide"]}, r"model \(autorec\): a setting has the wrong type"),
        ({"hidden": [0]}, r"model.hidden must list positive layer sizes"),
        ({"orientation": "diagonal"}, r"model.orientation must be 'user' or 'item'; got 'diagonal'"),
        ({"loss": "hinge"}, r"model.loss must be auto, mse or bce"),
    ],
)
def test_bad_model_values_are_named(setting, message):
    with pytest.raises(ConfigError, match=message):
        Recommender("autorec", **setting).resolved()


def test_model_values_are_converted_like_train_values():
    params = Recommender("autorec", hidden=300, l2=3).resolved()[0]
    assert params.hidden == [300] and params.l2 == 3.0 and isinstance(params.l2, float)


def test_for_model_puts_keyword_hyper_parameters_over_the_config():
    base = Config(model={"kind": "autorec", "hidden": [50]}, train={"epochs": 3}, run={"seed": 4})
    assert Config.for_model("autorec", None, {"hidden": [20]}).model == {"kind": "autorec", "hidden": [20]}
    assert Config.for_model("deep", base, {}) is base  # the config's kind wins over the default kind
    merged = Config.for_model("autorec", base, {"hidden": [10], "dropout": 0.1})
    assert merged.model == {"kind": "autorec", "hidden": [10], "dropout": 0.1}
    assert (merged.train, merged.run) == ({"epochs": 3}, {"seed": 4})
    assert base.model == {"kind": "autorec", "hidden": [50]}  # not changed in place


def test_the_refit_start_is_fresh_or_selected():
    from aerec.config import TrainConfig

    assert TrainConfig().refit_start == "fresh" and TrainConfig(refit_start="selected").refit_start == "selected"
    with pytest.raises(ConfigError, match="train.refit_start must be fresh or selected; got 'warm'"):
        TrainConfig(refit_start="warm")
