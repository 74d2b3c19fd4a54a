"""Configuration: one small dataclass per concern, loadable from TOML and saved back unchanged.

A run is described by a :class:`Config` with three parts:

* ``model``: the model kind and its hyper-parameters (a plain dict, checked against the model
  family's own dataclass when the model is built);
* ``train``: how to train (:class:`TrainConfig`): optimiser, learning rate, batches, epochs,
  validation and early stopping;
* ``run``: the run context (:class:`RunConfig`): seed, device, threads. Kept apart from the
  hyper-parameters so that the same model can be re-run elsewhere.

``--set key=value`` overrides use dotted keys: ``model.hidden=300``, ``train.lr=0.01``,
``run.seed=3``. Values are parsed as TOML (``[500, 500]``, ``true``, ``1e-3``) or taken as text.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Literal, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from aerec.errors import ConfigError

__all__ = [
    "Config", "TrainConfig", "RunConfig", "load_config", "apply_overrides", "check_fields", "build_train_config",
]

Optimizer = Literal["sgd", "momentum", "rmsprop", "adam", "adamw", "lbfgs"]
Schedule = Literal["constant", "step", "cosine", "plateau"]


@dataclass
class TrainConfig:
    """How a model is trained. Every field has a default that works; see docs/training.md.

    ``batch_size`` rows per update (1 = online, one row per update as in the course; 0 = the
    whole matrix as one batch, used with ``lbfgs``). ``epochs`` is the most passes over all rows;
    early stopping ends sooner when validation RMSE has not improved for ``patience`` epochs
    and restores the best weights. ``validation`` is the fraction of the *training* ratings
    carved off (seeded) for model selection; 0 disables it. With ``refit``, once the carve has
    chosen the number of epochs, the model kept trains on *all* the training ratings, the carved
    ones included: with ``refit_start = "fresh"`` a fresh network (same seed) for that many
    epochs; with ``"selected"`` the selection run's best weights for a third of them (rounded up).
    """

    optimizer: Optimizer = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 100
    schedule: Schedule = "constant"
    step_size: int = 30  # epochs between decays for schedule="step"
    gamma: float = 0.5  # decay factor for "step" and "plateau"
    lbfgs_iterations: int = 20  # L-BFGS iterations per epoch
    validation: float = 0.05
    patience: int = 10
    min_delta: float = 1e-4
    max_grad_norm: float = 0.0  # 0 = no clipping
    dense_refeeding: int = 0  # extra updates on the network's own dense output (Kuchaiev & Ginsburg 2017)
    shuffle: bool = True  # visit rows in a new random order each epoch (False: in index order)
    # Never zero the gradients between updates: the course's loop omits optimizer.zero_grad(),
    # so every update applies the running sum of all earlier gradients. Only for reproducing it.
    accumulate_gradients: bool = False
    loss_normalization: Literal["observed", "all"] = "observed"
    checkpoint_every: int = 1  # epochs between checkpoints when a checkpoint dir is given ...
    # ... as long as checkpoints take at most this share of the training time (1: no limit).
    # The models' default is CHECKPOINT_BUDGET (aerec.models.families); a bare Trainer's is 1.
    checkpoint_budget: float = 1.0
    # How rows reach the network: "auto" picks the faster of dense batches and the sparse path
    # (inputs and outputs at observed cells only); aerec.training.choose_batch_format.
    batch_format: Literal["auto", "dense", "sparse"] = "auto"
    refit: bool = False
    refit_start: Literal["fresh", "selected"] = "fresh"

    def __post_init__(self) -> None:
        if not isinstance(self.refit, bool):
            raise ConfigError(f"train.refit must be true or false; got {self.refit!r}")
        if self.refit_start not in ("fresh", "selected"):
            raise ConfigError(f"train.refit_start must be fresh or selected; got {self.refit_start!r}")
        if self.batch_size < 0:
            raise ConfigError(f"train.batch_size must be >= 0 (0 = full batch); got {self.batch_size}")
        if self.epochs < 1:
            raise ConfigError(f"train.epochs must be >= 1; got {self.epochs}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0; got {self.lr}")
        if not 0 <= self.validation < 1:
            raise ConfigError(f"train.validation must be in [0, 1); got {self.validation}")
        if self.optimizer not in ("sgd", "momentum", "rmsprop", "adam", "adamw", "lbfgs"):
            raise ConfigError(
                f"train.optimizer must be one of sgd, momentum, rmsprop, adam, adamw, lbfgs; got {self.optimizer!r}"
            )
        if self.schedule not in ("constant", "step", "cosine", "plateau"):
            raise ConfigError(f"train.schedule must be constant, step, cosine or plateau; got {self.schedule!r}")
        if self.batch_format not in ("auto", "dense", "sparse"):
            raise ConfigError(f"train.batch_format must be auto, dense or sparse; got {self.batch_format!r}")
        if self.loss_normalization not in ("observed", "all"):
            raise ConfigError(f"train.loss_normalization must be 'observed' or 'all'; got {self.loss_normalization!r}")
        if self.patience < 0:
            raise ConfigError(f"train.patience must be >= 0; got {self.patience}")
        self._check_ranges()

    def _check_ranges(self) -> None:
        """Values torch would refuse mid-run with a traceback (found by fuzz/, see docs/reliability.md)."""
        # Above ~1e38 torch's float32 optimiser steps overflow with a RuntimeError (found by
        # fuzz/fuzz_config.py); no useful rate comes near 1e6.
        for name in ("lr", "weight_decay"):
            if not getattr(self, name) <= 1e6:
                raise ConfigError(f"train.{name} must be a finite number <= 1e6; got {getattr(self, name)}")
        for name in ("momentum", "weight_decay", "min_delta", "max_grad_norm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"train.{name} must be a finite number >= 0; got {value}")
        if not 0 < self.gamma < 1:
            raise ConfigError(f"train.gamma (the learning-rate decay factor) must be in (0, 1); got {self.gamma}")
        for name in ("step_size", "lbfgs_iterations", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1; got {getattr(self, name)}")
        if not 0 < self.checkpoint_budget <= 1:
            raise ConfigError(
                f"train.checkpoint_budget (the most share of training time checkpoints may take) must be in "
                f"(0, 1], e.g. 0.05; got {self.checkpoint_budget}"
            )
        if self.dense_refeeding < 0:
            raise ConfigError(f"train.dense_refeeding must be >= 0; got {self.dense_refeeding}")


@dataclass
class RunConfig:
    """Run context, apart from hyper-parameters: seed, device and CPU threads (0 = automatic).

    ``precision``: ``auto`` trains under bf16 autocast on a GPU that supports it and in fp32
    elsewhere; ``fp32`` or ``bf16`` force one (see :mod:`aerec.device`).

    ``compile``: run the network's forward pass through ``torch.compile`` while training
    (:func:`aerec.training.compile_network`); off by default, because on CPU it measured no
    faster than eager for these networks and its compilation takes seconds (docs/benchmarks.md,
    "Performance"). Where compiling fails (no C++ compiler, an unsupported operation), the
    network runs eagerly (dynamo's ``suppress_errors``, set for the fit only).
    """

    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    threads: int = 0
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda", "auto") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"run.device must be cpu, cuda or auto; got {self.device!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"run.precision must be auto, fp32 or bf16; got {self.precision!r}")
        # numpy's generators take seeds >= 0, torch's at most 2**64 - 1.
        if not 0 <= self.seed < 2**64:
            raise ConfigError(f"run.seed must be a whole number from 0 to 2**64 - 1; got {self.seed!r}")
        if not isinstance(self.compile, bool):
            raise ConfigError(f"run.compile must be true or false; got {self.compile!r}")
        if not 0 <= self.threads <= 1024:
            raise ConfigError(f"run.threads must be from 0 (automatic) to 1024; got {self.threads}")


@dataclass
class Config:
    """A whole run as the user wrote it: the model kind and hyper-parameters, training, run context.

    The three parts are plain tables of the settings the user chose; the model family fills in
    its own defaults and presets when the model is built (:meth:`resolve`), and the resolved
    settings are what a model directory records.
    """

    model: dict[str, Any] = field(default_factory=lambda: {"kind": "autorec"})
    train: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.model.get("kind", "autorec"))

    def to_dict(self) -> dict[str, Any]:
        return {"model": copy.deepcopy(self.model), "train": copy.deepcopy(self.train), "run": copy.deepcopy(self.run)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> Config:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a config is a table with model, train and run tables; got {data!r}")
        unknown = set(data) - {"model", "train", "run"}
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) {sorted(unknown)}; expected model, train, run")
        parts = {}
        for name in ("model", "train", "run"):
            table = data.get(name, {})
            if not isinstance(table, Mapping):
                raise ConfigError(f"{source}: [{name}] must be a table of settings; got {table!r}")
            parts[name] = dict(table)
        config = cls(**parts)
        config.resolve_run()  # fail early on a bad [run] table
        _build(TrainConfig, config.train, f"{source} [train]")
        return config

    def resolve_run(self) -> RunConfig:
        return _build(RunConfig, self.run, "[run]")

    @classmethod
    def for_model(cls, kind: str, config: Config | None, model_params: Mapping[str, Any],
                  model_keys: Collection[str] = frozenset()) -> Config:
        """What ``Recommender(kind, config=config, **settings)`` means: ``kind`` and the keyword
        settings alone, or ``config`` with the keywords over it.

        A keyword goes where its name belongs, so the Python API takes the command line's names:
        the family's hyper-parameters and ``preset`` to the model table, ``epochs``, ``lr``,
        ``batch_size``, ... to ``train``, ``seed``, ``device``, ``threads`` to ``run``, and
        ``online=True`` means ``batch_size=1`` (a name in both, such as RecVAE's ``gamma``, is
        the model's). ``model_keys`` are the family's hyper-parameter names (the estimator looks
        them up in :func:`aerec.registry.hyper_parameters`; this layer knows no families)."""
        settings = dict(model_params)
        if settings.pop("online", False):
            settings.setdefault("batch_size", 1)
        tables: dict[str, dict[str, Any]] = {"model": {}, "train": {}, "run": {}}
        for key, value in settings.items():
            if key in model_keys or key in ("kind", "preset"):
                tables["model"][key] = value
            elif key in _TRAIN_KEYS:
                tables["train"][key] = value
            elif key in _RUN_KEYS:
                tables["run"][key] = value
            else:  # unknown: the family's check names the valid keys
                tables["model"][key] = value
        if config is None:
            return cls(model={"kind": kind, **tables["model"]}, train=tables["train"], run=tables["run"])
        if settings:
            return cls(model={**config.model, **tables["model"]}, train={**config.train, **tables["train"]},
                       run={**config.run, **tables["run"]})
        return config

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())


def check_fields(cls: type, values: Mapping[str, Any], where: str) -> None:
    """Raise ConfigError naming any key of ``values`` that ``cls`` (a dataclass) does not have."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(names)}")


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a table of settings; got {values!r}")
    check_fields(cls, values, where)
    defaults = cls()
    clean: dict[str, Any] = {}
    for key, value in values.items():
        default = getattr(defaults, key)
        clean[key] = coerce_value(value, default, f"{where} {key}")
    return cls(**clean)


def build_train_config(values: Mapping[str, Any], where: str = "[train]") -> TrainConfig:
    """A checked :class:`TrainConfig` from a table of settings (unknown keys are errors)."""
    return _build(TrainConfig, values, where)


def coerce_value(value: Any, default: Any, where: str) -> Any:
    """Match the default's type: ints stay ints, floats accept ints, strings stay strings.

    Anything else (e.g. a list default) passes unchanged; ``where`` names the setting in errors.
    """
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false; got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where} must be a whole number; got {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number; got {value!r}")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be text; got {value!r}")
    return value


_coerce = coerce_value  # the earlier private name


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML literal when it parses (numbers, booleans, arrays), else text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides to a config dict (returns a new dict)."""
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects section.key=value (e.g. train.lr=0.01); got {item!r}")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2 or parts[0] not in ("model", "train", "run") or not parts[1]:
            raise ConfigError(
                f"--set key must be model.NAME, train.NAME or run.NAME (e.g. train.lr=0.01); got {key!r}"
            )
        section = out.setdefault(parts[0], {})
        if not isinstance(section, dict):  # e.g. [[train]] in the file: an array of tables
            raise ConfigError(f"--set {key}: [{parts[0]}] in the config is not a table of settings; got {section!r}")
        section[parts[1]] = parse_value(text.strip())
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a TOML config file (optional) and apply ``--set`` overrides."""
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        p = Path(path)
        source = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist; check the path") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc}); see docs/training.md for an example") from None
    if overrides:
        data = apply_overrides(data, overrides)
    return Config.from_dict(data, source=source)

# Where a keyword setting of Recommender(...) / ImplicitRecommender(...) goes (Config.for_model).
_TRAIN_KEYS = frozenset(f.name for f in dataclasses.fields(TrainConfig))
_RUN_KEYS = frozenset(f.name for f in dataclasses.fields(RunConfig))
