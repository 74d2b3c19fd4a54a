"""Hyper-parameter search with Optuna: a validation-only objective, per-family search spaces.

:func:`tune` searches a model family's hyper-parameters with Optuna's TPE sampler (seeded) and
stops hopeless trials early with a median pruner fed the per-epoch validation RMSE. The
objective is the best validation RMSE of a trial, on a validation part carved (seeded) from the
*training* ratings only. The test ratings never take part in the search: when given, they are
read (a loader may be passed, so not even read) and scored exactly once, at the end, by a model
refitted with the best settings on all the training ratings, the same way ``aerec train
--config best.toml`` would train it.

Every setting the user fixed (``config.model`` / ``config.train`` keys, ``--set``) is left out
of the search; the rest of a family's space is searched. The best settings come back as a full
:class:`~aerec.config.Config` (every default resolved, so the result does not drift if a family's
defaults change) that :meth:`TuneResult.config_toml` writes as a TOML file.

Optuna is an optional extra (``pip install 'aerec[tune]'``); it is imported only when a search
starts.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from aerec.config import Config
from aerec.data.matrix import RatingMatrix
from aerec.data.ratings import Ratings
from aerec.data.splits import validation_split
from aerec.errors import AerecError, ConfigError, TrainingError
from aerec.registry import get_family

__all__ = ["SEARCH_SPACES", "SearchSpace", "TrialRecord", "TuneResult", "default_params", "resolved_config", "tune"]

SECTIONS = ("model", "train")


def _optuna():
    """Import Optuna, or say how to install it."""
    try:
        import optuna
    except ModuleNotFoundError as exc:
        if exc.name != "optuna":
            raise
        raise AerecError(
            "hyper-parameter tuning needs Optuna, an optional extra of aerec. "
            "Fix: pip install 'aerec[tune]' (or pip install optuna)"
        ) from None
    return optuna


# ====================================================================== search spaces
class SearchSpace:
    """What one trial tries: values drawn from an Optuna trial, except those the user fixed.

    A space function calls ``float`` / ``int`` / ``choice`` for each searched setting; each
    returns the user's value when ``section.key`` was fixed (nothing is drawn), else the
    trial's suggestion, recorded under the Optuna name ``"section.key"``. ``derive`` sets a
    value that follows from other choices (e.g. more epochs for Adam than for L-BFGS), again
    unless the user fixed it. :attr:`values` holds ``{"model": {...}, "train": {...}}``.
    """

    def __init__(self, trial: Any, fixed: Mapping[str, Mapping[str, Any]]) -> None:
        self.trial = trial
        self.fixed = {s: dict(fixed.get(s, {})) for s in SECTIONS}
        self.values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}

    def free(self, section: str, key: str) -> bool:
        """True when the user left ``section.key`` to the search."""
        return key not in self.fixed[section]

    def _take(self, section: str, key: str, draw: Callable[[str], Any], to: Callable[[Any], Any] | None) -> Any:
        if not self.free(section, key):
            return self.fixed[section][key]
        raw = draw(f"{section}.{key}")
        value = to(raw) if to is not None else raw
        self.values[section][key] = value
        return value

    def float(self, section: str, key: str, low: float, high: float, *, log: bool = False) -> Any:
        return self._take(section, key, lambda n: self.trial.suggest_float(n, low, high, log=log), None)

    def int(self, section: str, key: str, low: int, high: int, *, step: int = 1, log: bool = False) -> Any:
        return self._take(section, key, lambda n: self.trial.suggest_int(n, low, high, step=step, log=log), None)

    def choice(self, section: str, key: str, choices: list[Any], *, to: Callable[[Any], Any] | None = None) -> Any:
        """One of ``choices`` (numbers, text, booleans); ``to`` maps it to the setting's value."""
        return self._take(section, key, lambda n: self.trial.suggest_categorical(n, choices), to)

    def derive(self, section: str, key: str, value: Any) -> Any:
        """Set a value that follows from earlier choices, unless the user fixed it."""
        if not self.free(section, key):
            return self.fixed[section][key]
        self.values[section][key] = value
        return value


def _batch(sp: SearchSpace, choices: tuple[int, ...] = (32, 64, 128, 256)) -> None:
    sp.choice("train", "batch_size", list(choices))


def _autorec_space(sp: SearchSpace) -> None:
    """AutoRec (Sedhain et al. 2015), around the family's defaults.

    Width, L2 lambda, encoder activation, whether the network learns the residual over the bias
    model (``baseline``) and whether it also reads which cells are observed (``mask_input``),
    and L-BFGS's iterations per epoch. Epochs and patience follow from the iterations so that
    every trial gets the default's budget: 200 iterations at most, stopping 20 iterations after
    the best (5 an epoch: 40 epochs, patience 4). When the user fixes ``train.optimizer`` to a
    first-order optimiser, its learning rate and batch size are searched instead.
    """
    sp.choice("model", "hidden", list(AUTOREC_HIDDEN), to=lambda h: [h])
    sp.float("model", "l2", 30.0, 300.0, log=True)
    sp.choice("model", "activation", ["sigmoid", "elu", "tanh"])
    sp.choice("model", "baseline", [True, False])
    sp.choice("model", "mask_input", [False, True])
    optimizer = sp.fixed["train"].get("optimizer", "lbfgs")  # not searched: L-BFGS is the family's default
    if optimizer == "lbfgs":
        # Full-batch L-BFGS as in the paper: one step of lbfgs_iterations per epoch.
        sp.derive("train", "batch_size", 0)
        sp.derive("train", "lr", 1.0)
        iterations = sp.choice("train", "lbfgs_iterations", list(LBFGS_ITERATIONS))
        sp.derive("train", "epochs", max(1, LBFGS_BUDGET // iterations))
        sp.derive("train", "patience", max(1, math.ceil(LBFGS_PATIENCE / iterations)))
    else:
        sp.float("train", "lr", 3e-4, 1e-2, log=True)
        _batch(sp)
        # First-order optimisers need many more (cheaper) epochs than L-BFGS; early stopping ends them sooner.
        sp.derive("train", "epochs", 100)
        sp.derive("train", "patience", 10)


AUTOREC_HIDDEN = (300, 400, 500, 600, 800)
LBFGS_ITERATIONS = (5, 10, 20)
LBFGS_BUDGET = 200  # L-BFGS iterations a trial may run (the default: 40 epochs of 5)
LBFGS_PATIENCE = 20  # iterations without improvement before stopping (the default: 4 epochs of 5)


def _sae_space(sp: SearchSpace) -> None:
    """The course's stacked autoencoder: layer sizes, RMSprop learning rate, batch, weight decay."""
    if sp.free("model", "hidden"):
        outer = sp.trial.suggest_categorical("model.hidden_outer", [10, 20, 40, 80, 160])
        ratio = sp.trial.suggest_categorical("model.code_ratio", [0.25, 0.5])
        code = max(2, round(outer * ratio))
        sp.derive("model", "hidden", [outer, code, outer])  # n-outer-code-outer-n, as the course's 20-10-20
    sp.float("train", "lr", 1e-3, 3e-2, log=True)
    _batch(sp, (8, 16, 32, 64, 128))
    # A choice, not a log range: it holds the default 0 and the course's 0.5.
    sp.choice("train", "weight_decay", [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5])


def _deep_shape(hidden: list[int]) -> tuple[int, int]:
    """(width, depth) of a ``[w] * d + [2w] + [w] * d`` stack (ValueError for another shape)."""
    width, depth = hidden[0], (len(hidden) - 1) // 2
    if hidden != [width] * depth + [2 * width] + [width] * depth:
        raise ValueError("not a deep-space shape")
    return width, depth


# How _DefaultsTrial reads the names a space derives model.hidden from (sae's and deep's).
_DERIVED_DEFAULTS: dict[str, Callable[[Mapping[str, Mapping[str, Any]]], Any]] = {
    "model.hidden_outer": lambda d: d["model"]["hidden"][0],
    "model.code_ratio": lambda d: d["model"]["hidden"][1] / d["model"]["hidden"][0],
    "model.width": lambda d: _deep_shape(d["model"]["hidden"])[0],
    "model.depth": lambda d: _deep_shape(d["model"]["hidden"])[1],
}


def _deep_space(sp: SearchSpace) -> None:
    """DeepRec (Kuchaiev & Ginsburg 2017): width, depth, code dropout, learning rate, batch."""
    if sp.free("model", "hidden"):
        width = sp.trial.suggest_categorical("model.width", [128, 256, 512])
        depth = sp.trial.suggest_int("model.depth", 1, 3)
        sp.derive("model", "hidden", [width] * depth + [2 * width] + [width] * depth)
    sp.float("model", "code_dropout", 0.0, 0.9)
    sp.float("train", "lr", 1e-4, 1e-2, log=True)
    _batch(sp)


def _dae_space(sp: SearchSpace) -> None:
    """Denoising autoencoder: width, L2, input dropout, learning rate, batch."""
    _one_layer_space(sp, "input_dropout", 0.0, 0.5)


def _sparse_space(sp: SearchSpace) -> None:
    """Sparse autoencoder: width, L2, L1 activity penalty, learning rate, batch."""
    _one_layer_space(sp, "code_l1", 1e-5, 1e-1, log=True)


def _one_layer_space(sp: SearchSpace, regulariser: str, low: float, high: float, *, log: bool = False) -> None:
    """A one-hidden-layer family (dae, sparse): its width, L2, its own ``model.<regulariser>`` in
    ``[low, high]``, the learning rate and the batch, suggested in that order."""
    sp.choice("model", "hidden", [200, 300, 500, 700], to=lambda h: [h])
    sp.float("model", "l2", 1.0, 1000.0, log=True)
    sp.float("model", regulariser, low, high, log=log)
    sp.float("train", "lr", 1e-4, 1e-2, log=True)
    _batch(sp)


def _generic_space(sp: SearchSpace) -> None:
    """For a family without its own space: the optimiser's learning rate, batch and weight decay."""
    sp.float("train", "lr", 1e-4, 1e-2, log=True)
    _batch(sp)
    sp.float("train", "weight_decay", 1e-7, 1e-2, log=True)


class _DefaultsTrial:
    """Stands in for an Optuna trial and answers each suggestion with the configured default.

    Records ``{"section.key": value}`` for every default that the space could have drawn (a
    number inside its range, a value among its choices; a one-layer ``hidden`` like ``[500]``
    matches the choice ``500``; names a setting is derived from, through
    ``_DERIVED_DEFAULTS``). Defaults outside the space are not recorded: the sampler draws
    those, and the trial's note names them ("the defaults, but model.l2 drawn").
    """

    _MISSING = object()

    def __init__(self, defaults: Mapping[str, Mapping[str, Any]]) -> None:
        self.defaults = defaults
        self.params: dict[str, Any] = {}

    def _default(self, name: str) -> Any:
        if name in _DERIVED_DEFAULTS:
            try:
                return _DERIVED_DEFAULTS[name](self.defaults)
            except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
                return self._MISSING
        section, _, key = name.partition(".")
        return self.defaults.get(section, {}).get(key, self._MISSING)

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False, step: Any = None) -> float:
        v = self._default(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high:
            self.params[name] = float(v)
            return float(v)
        return low

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        v = self._default(name)
        if isinstance(v, int) and not isinstance(v, bool) and low <= v <= high and (v - low) % step == 0:
            self.params[name] = v
            return v
        return low

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        v = self._default(name)
        if isinstance(v, list) and len(v) == 1:
            v = v[0]  # hidden = [500] -> the choice 500
        for c in choices:
            if type(c) is type(v) and c == v:  # True must not match 1
                self.params[name] = c
                return c
        return choices[0]


def default_params(
    space: Callable[[SearchSpace], None], fixed: Mapping[str, Mapping[str, Any]], config: Config
) -> dict[str, Any]:
    """The Optuna parameters (``{"model.l2": 100.0, ...}``) that make ``space`` draw ``config``'s settings.

    ``config`` should be resolved (:func:`resolved_config`); settings in ``fixed`` are not
    searched, so they do not appear. What ``tune`` enqueues as its first trial.
    """
    trial = _DefaultsTrial({"model": dict(config.model), "train": dict(config.train)})
    space(SearchSpace(trial, fixed))
    return trial.params


SEARCH_SPACES: dict[str, Callable[[SearchSpace], None]] = {
    "autorec": _autorec_space,
    "sae": _sae_space,
    "deep": _deep_space,
    "dae": _dae_space,
    "sparse": _sparse_space,
}
"""Model kind -> the function that draws one trial's settings (see :class:`SearchSpace`)."""


# ====================================================================== results
@dataclass
class TrialRecord:
    """One trial: its state, its best validation RMSE and where it stopped."""

    number: int
    state: str  # "complete", "pruned", "failed"
    val_rmse: float | None
    best_epoch: int | None
    epochs: int
    seconds: float
    params: dict[str, Any]
    note: str = ""


@dataclass
class TuneResult:
    """What :func:`tune` found.

    Attributes:
        kind: the model family searched.
        best_value: the best trial's best validation RMSE.
        best_trial: its number (0-based, as Optuna counts).
        best_epoch: the epoch where that trial's validation RMSE was lowest.
        config: the best settings, every default resolved (``aerec train --config`` reads it).
        trials: one :class:`TrialRecord` per trial, in order.
        validation: how the validation part was carved (fraction, seed, sizes).
        test_metrics: the refitted best model's test figures, or None without test ratings.
        model: that refitted model (a :class:`~aerec.recommender.Recommender`), when refitted.
        seconds: wall time of the search (trials only).
    """

    kind: str
    best_value: float
    best_trial: int
    best_epoch: int | None
    config: Config
    trials: list[TrialRecord]
    validation: dict[str, Any]
    test_metrics: dict[str, Any] | None = None
    model: Any = None
    seconds: float = 0.0
    study: Any = field(default=None, repr=False)

    def counts(self) -> dict[str, int]:
        """How many trials completed, were pruned, failed."""
        out = {"complete": 0, "pruned": 0, "failed": 0}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out

    def trials_frame(self) -> pd.DataFrame:
        """The trial table: trial, state, val_rmse, best_epoch, epochs, seconds, then each parameter."""
        names: list[str] = []
        for t in self.trials:
            names += [k for k in t.params if k not in names]
        rows = [
            {"trial": t.number, "state": t.state, "val_rmse": t.val_rmse, "best_epoch": t.best_epoch,
             "epochs": t.epochs, "seconds": round(t.seconds, 3), **{n: t.params.get(n) for n in names}, "note": t.note}
            for t in self.trials
        ]
        return pd.DataFrame(rows, columns=["trial", "state", "val_rmse", "best_epoch", "epochs", "seconds", *names, "note"])

    def config_toml(self) -> str:
        """The best settings as a TOML file for ``aerec train --config``, with a header saying where they come from."""
        c = self.counts()
        v = self.validation
        header = [
            f"# aerec tune: best of {len(self.trials)} trial(s) of model {self.kind!r} "
            f"({c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed)",
            f"# best validation RMSE {self.best_value:.4f} (trial {self.best_trial}, epoch {self.best_epoch}) on "
            f"{v['fraction']:.0%} of the training ratings ({v['ratings']} ratings, seed {v['seed']})",
            "# use: aerec train --config THIS_FILE --data ... --out DIR",
        ]
        return "\n".join(header) + "\n\n" + self.config.to_toml()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (what ``aerec tune --json`` prints)."""
        frame = self.trials_frame()
        return {
            "model": self.kind,
            "best": {"val_rmse": self.best_value, "trial": self.best_trial, "epoch": self.best_epoch,
                     "params": next((dict(t.params) for t in self.trials if t.number == self.best_trial), {})},
            "config": self.config.to_dict(),
            "counts": self.counts(),
            "validation": dict(self.validation),
            "seconds": self.seconds,
            "trials": [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")],
            "test": self.test_metrics,
        }


def _plain(v: Any) -> Any:
    """NumPy scalars and NaN -> JSON-friendly Python values."""
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def resolved_config(config: Config) -> Config:
    """``config`` with the family's defaults and preset filled in: every setting spelled out."""
    params, train, run = get_family(config.kind, "explicit").resolve(config)
    return Config(
        model={"kind": config.kind, **dataclasses.asdict(params)},
        train=dataclasses.asdict(train),
        run=dataclasses.asdict(run),
    )


# ====================================================================== the search
def tune(
    train: Ratings,
    *,
    kind: str | None = None,
    config: Config | None = None,
    n_trials: int = 20,
    timeout: float | None = None,
    seed: int | None = None,
    validation: float = 0.1,
    test: Ratings | Callable[[], Ratings] | None = None,
    refit: bool = False,
    prune: bool = True,
    on_trial: Callable[[TrialRecord], None] | None = None,
    start_from_defaults: bool = True,
) -> TuneResult:
    """Search hyper-parameters of a model family on ``train``; optionally score the best on ``test``.

    Args:
        train: the training ratings. A ``validation`` fraction of them is carved off (seeded)
            as the search's objective; trials train on the rest.
        kind: the model family (default: ``config``'s kind, else ``autorec``).
        config: a base configuration; every ``model``/``train`` key it sets is fixed (not
            searched). Its ``run`` table (device, threads) applies to every trial.
        n_trials: the most trials; ``timeout`` (seconds) ends the search sooner (checked
            between trials).
        seed: seeds the sampler, the validation carving and every trial's weights
            (default: ``config``'s ``run.seed``, else 0).
        validation: the fraction of ``train`` used for validation, in (0, 1).
        test: test ratings, or a function returning them (so a file is read only at the end).
            Never used during the search: after it, the best settings are refitted on all of
            ``train`` and scored once on ``test``.
        refit: refit the best settings on all of ``train`` even without ``test`` (to save it).
        prune: stop trials whose running best validation RMSE is worse than the median of
            earlier trials after the same amount of work (Optuna's MedianPruner; the work is
            counted in L-BFGS iterations for L-BFGS, else in epochs; never in the first
            quarter of a trial's epochs, nor in its first two).
        on_trial: called with each finished trial's :class:`TrialRecord` (progress display).
        start_from_defaults: make the first trial the family's default settings (those in
            the search's ranges), so the search is scored against the defaults on the same
            validation ratings and never returns anything worse than them.

    Raises:
        ConfigError: bad arguments, an unknown kind, or settings no trial can use.
        TrainingError: when no trial finished.
        AerecError: when Optuna is not installed.
    """
    optuna = _optuna()
    base = config if config is not None else Config()
    if kind is not None:
        base = Config(model={**base.model, "kind": kind}, train=dict(base.train), run=dict(base.run))
    get_family(base.kind, "explicit")  # an unknown kind, or a top-N one: fail before any work
    _check_args(n_trials, timeout, validation)
    base, seed = _seeded(base, seed)
    resolved_config(base)  # the user's fixed settings must be valid on their own
    space = _search_space(base.kind)
    data = _carve_validation(train, validation, seed)
    fixed = {s: {k: v for k, v in base.to_dict()[s].items() if k not in ("kind", "preset")} for s in SECTIONS}
    # The first trial: the family's defaults, as far as the space can hold them.
    enqueued = default_params(space, fixed, resolved_config(base)) if start_from_defaults else {}
    search = _Search(optuna, base, space, fixed, data, enqueued, prune, on_trial)
    started = time.perf_counter()
    study = search.run(seed, n_trials, timeout)
    result = search.result(study, time.perf_counter() - started)
    if refit or test is not None:
        result.model = _refit(result.config, train)
    if test is not None:
        from aerec.evaluation import evaluate_ratings

        test_ratings = test() if callable(test) else test  # read only now, after the search
        result.test_metrics = evaluate_ratings(result.model, test_ratings)
    return result


def _seeded(base: Config, seed: int | None) -> tuple[Config, int]:
    """``(base with run.seed set, the seed)``: the search's seed, ``base``'s own unless given."""
    run = base.resolve_run()
    seed = run.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a whole number >= 0; got {seed!r}")
    return Config(model=dict(base.model), train=dict(base.train), run={**base.run, "seed": seed}), seed


def _search_space(kind: str) -> Callable[[SearchSpace], None]:
    space = SEARCH_SPACES.get(kind)
    if space is None:
        warnings.warn(
            f"model {kind!r} has no search space of its own; searching only train.lr, "
            f"train.batch_size and train.weight_decay", stacklevel=3
        )
        space = _generic_space
    return space


@dataclass
class _SearchData:
    """The training ratings split for the search: trials fit on one part, are scored on the other."""

    fit_matrix: RatingMatrix
    val_matrix: RatingMatrix
    validation: dict[str, Any]  # how it was carved, for the result: fraction, seed, sizes


def _carve_validation(train: Ratings, fraction: float, seed: int) -> _SearchData:
    """Validation carved from the training ratings only. Both parts share the vocabularies of
    all the training ratings, so a validation cell whose user or item has no other rating is
    scored by the bias fallback, as it would be at prediction time."""
    fit_part, val_part = validation_split(train, fraction, seed=seed)
    full = RatingMatrix.from_ratings(train)
    fit_matrix = RatingMatrix.from_ratings(fit_part, users=full.users, items=full.items)
    val_matrix = RatingMatrix.from_ratings(val_part, users=full.users, items=full.items)
    return _SearchData(fit_matrix, val_matrix,
                       {"fraction": fraction, "seed": seed, "ratings": len(val_part), "fit_ratings": len(fit_part)})


class _Search:
    """One Optuna study over a family's space: the objective, the run, and what it found."""

    def __init__(self, optuna, base: Config, space, fixed, data: _SearchData, enqueued: dict[str, Any],
                 prune: bool, on_trial) -> None:
        self.optuna, self.base, self.space, self.fixed, self.data = optuna, base, space, fixed, data
        self.enqueued, self.prune, self.on_trial = enqueued, prune, on_trial
        self.records: list[TrialRecord] = []
        self.configs: dict[int, Config] = {}

    def objective(self, trial) -> float:
        sp = SearchSpace(trial, self.fixed)
        self.space(sp)
        base = self.base
        cfg = Config(model={**base.model, **sp.values["model"]}, train={**base.train, **sp.values["train"]},
                     run=dict(base.run))
        self.configs[trial.number] = cfg
        note = ""
        if trial.number == 0 and self.enqueued:
            drawn = sorted(set(trial.params) - set(self.enqueued))  # defaults the space cannot hold
            note = "the defaults" if not drawn else f"the defaults, but {', '.join(drawn)} drawn"
        return _run_trial(self.optuna, trial, cfg, self.data.fit_matrix, self.data.val_matrix, self.records,
                          self.prune, self.on_trial, note=note)

    def run(self, seed: int, n_trials: int, timeout: float | None):
        optuna = self.optuna
        sampler = optuna.samplers.TPESampler(seed=seed)
        # Prune only after a few trials; _run_trial reports nothing in a trial's first epochs,
        # which look alike in every trial.
        pruner = (optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0) if self.prune
                  else optuna.pruners.NopPruner())
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # trials are reported through on_trial
        try:
            study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
            if self.enqueued:
                study.enqueue_trial(self.enqueued)
            study.optimize(self.objective, n_trials=n_trials, timeout=timeout, catch=(TrainingError,))
        finally:
            optuna.logging.set_verbosity(verbosity)
        return study

    def result(self, study, seconds: float) -> TuneResult:
        complete = [t for t in study.trials if t.state == self.optuna.trial.TrialState.COMPLETE]
        if not complete:
            notes = "; ".join(f"trial {r.number}: {r.note}" for r in self.records if r.note) or "none finished in time"
            raise TrainingError(
                f"no tuning trial finished ({notes}). Fix: allow more --trials or a longer --timeout, "
                "or fix the settings that make training fail"
            )
        best = study.best_trial
        return TuneResult(
            kind=self.base.kind,
            best_value=float(best.value),
            best_trial=best.number,
            best_epoch=best.user_attrs.get("best_epoch"),
            config=resolved_config(self.configs[best.number]),
            trials=self.records,
            validation=self.data.validation,
            seconds=seconds,
            study=study,
        )


def _check_args(n_trials: Any, timeout: Any, validation: Any) -> None:
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"the number of trials must be a whole number >= 1; got {n_trials!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
        raise ConfigError(f"the timeout must be a number of seconds > 0; got {timeout!r}")
    if isinstance(validation, bool) or not isinstance(validation, (int, float)) or not 0 < validation < 1:
        raise ConfigError(f"the validation fraction must be in (0, 1); got {validation!r}")


PRUNE_AFTER_EPOCHS = 2  # a trial is never pruned in its first epochs: every trial starts alike
PRUNE_AFTER_FRACTION = 0.25  # ... nor in the first quarter of its epochs (early curves cross, L-BFGS's above all)


def _pruning_plan(cfg: Config) -> tuple[int, int]:
    """``(work per epoch, epochs before pruning may start)`` for one trial.

    The pruner's step counts work: L-BFGS iterations for L-BFGS (trials differ in them), else
    epochs. A trial may be pruned only after max(2, a quarter of its epochs).
    """
    train = resolved_config(cfg).train
    per_epoch = int(train["lbfgs_iterations"]) if train["optimizer"] == "lbfgs" else 1
    return per_epoch, max(PRUNE_AFTER_EPOCHS, math.ceil(PRUNE_AFTER_FRACTION * int(train["epochs"])))


def _run_trial(optuna, trial, cfg: Config, fit_matrix, val_matrix, records, prune: bool, on_trial, note: str = "") -> float:
    """Train one trial's model; report the running best validation RMSE to the pruner after each epoch.

    The pruner compares trials at the same step, so the step counts work (see
    :func:`_pruning_plan`): a trial of 5 L-BFGS iterations an epoch is compared after its 12th
    epoch with one of 20 an epoch after its 3rd.
    """
    from aerec.ensemble import rating_model

    seen: dict[str, Any] = {"best": math.inf, "best_epoch": None, "epochs": 0}
    per_epoch, warmup = _pruning_plan(cfg)
    started = time.perf_counter()

    def report(record) -> None:
        seen["epochs"] = record.epoch
        if record.val_rmse is not None and record.val_rmse < seen["best"]:
            seen["best"], seen["best_epoch"] = record.val_rmse, record.epoch
        if prune and record.epoch > warmup and math.isfinite(seen["best"]):
            trial.report(seen["best"], record.epoch * per_epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {record.epoch}")

    def finish(state: str, value: float | None, best_epoch: int | None, why: str = "") -> None:
        rec = TrialRecord(
            number=trial.number, state=state, val_rmse=value, best_epoch=best_epoch, epochs=seen["epochs"],
            seconds=time.perf_counter() - started, params=dict(trial.params), note="; ".join(x for x in (note, why) if x),
        )
        trial.set_user_attr("best_epoch", best_epoch)
        records.append(rec)
        if on_trial is not None:
            on_trial(rec)

    try:
        model = rating_model(cfg).fit(fit_matrix, val_matrix, callbacks=[report])
    except optuna.TrialPruned as exc:
        finish("pruned", seen["best"] if math.isfinite(seen["best"]) else None, seen["best_epoch"], str(exc))
        raise
    except TrainingError as exc:
        finish("failed", None, None, str(exc))
        raise
    result = model.train_result_
    if result.best_val is None:
        raise ConfigError("tuning needs a validation RMSE each epoch, but the model reported none")
    finish("complete", float(result.best_val), result.best_epoch)
    return float(result.best_val)


def _refit(config: Config, train: Ratings):
    """The best settings trained on all the training ratings, as ``aerec train --config`` would."""
    from aerec.ensemble import rating_model

    return rating_model(config).fit(train)
