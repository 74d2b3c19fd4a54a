"""Cross-validation of a rating model: train on each fold's training part, test on its test
part, and report every fold, the mean and the standard deviation, beside the bias baseline
(what Surprise's ``cross_validate`` prints).

>>> result = cross_validate("ml-100k", splits=["u1", "u2", "u3", "u4", "u5"])   # doctest: +SKIP
>>> result.mean["rmse"], result.std["rmse"], result.baseline_mean["rmse"]         # doctest: +SKIP

The folds are either a seeded random K-fold of the ratings (:func:`aerec.data.splits.kfold`:
every rating is tested exactly once) or named split specs (``u1``..``u5``, ``kfold:5:0``, ...,
see :func:`aerec.data.splits.parse_split`). Each fold trains a fresh model with the same
settings and seed; the bias model (:class:`aerec.BiasModel`) is fitted and tested on the same
parts. Folds run one after another, or in ``jobs`` processes (one CPU thread each).

Only rating models are cross-validated: an implicit (top-N) model is refused with a
:class:`~aerec.errors.ConfigError`, since its protocol holds out users or items rather than
ratings (``aerec train --implicit --split ...`` evaluates one split).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aerec.config import Config
from aerec.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from aerec.data.ratings import Ratings
    from aerec.data.splits import Split

__all__ = ["CVResult", "FOLD_METRICS", "cross_validate"]

FOLD_METRICS = ("rmse", "mae", "precision@10", "recall@10", "ndcg@10", "fit_seconds", "test_seconds")
"""The figures of each fold that the mean and standard deviation are taken over (``@10``
follows ``k``)."""


@dataclass
class CVResult:
    """The folds of one cross-validation, their mean and (population) standard deviation, and
    the same for the bias baseline. :meth:`to_dict` is what ``aerec cv --json`` prints."""

    model: str  # the model family
    folds: list[dict[str, Any]]  # one record per fold: name, sizes, figures, times
    baseline_folds: list[dict[str, Any]]
    metrics: tuple[str, ...] = FOLD_METRICS
    source: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> dict[str, float]:
        return _summary(self.folds, self.metrics, "mean")

    @property
    def std(self) -> dict[str, float]:
        return _summary(self.folds, self.metrics, "std")

    @property
    def baseline_mean(self) -> dict[str, float]:
        return _summary(self.baseline_folds, self.metrics, "mean")

    @property
    def baseline_std(self) -> dict[str, float]:
        return _summary(self.baseline_folds, self.metrics, "std")

    def to_dict(self) -> dict[str, Any]:
        """``{"model", "source", "config", "folds", "mean", "std", "baseline": {"model", "folds",
        "mean", "std"}}``, JSON-ready."""
        from aerec.workflows import json_ready

        return json_ready({
            "model": self.model, "source": self.source, "config": self.config,
            "folds": self.folds, "mean": self.mean, "std": self.std,
            "baseline": {"model": "bias", "folds": self.baseline_folds, "mean": self.baseline_mean,
                         "std": self.baseline_std},
        })


def _summary(folds: list[dict[str, Any]], metrics: Sequence[str], how: str) -> dict[str, float]:
    """Mean or population standard deviation (``ddof=0``, as Surprise reports) of each metric
    over the folds that have it (NaN when none has)."""
    import numpy as np

    out = {}
    for name in metrics:
        values = np.array([np.nan if f.get(name) is None else float(f[name]) for f in folds], dtype=np.float64)
        values = values[np.isfinite(values)]  # a fold with no ranked user has no precision@k: left out
        out[name] = float(values.mean() if how == "mean" else values.std()) if len(values) else math.nan
    return out


# ============================================================================= the folds
def make_folds(ratings: Ratings, *, folds: int | None = None, splits: Sequence[str] | None = None,
               seed: int = 0) -> list[Split]:
    """The train/test parts to cross-validate on: a seeded random ``folds``-fold of the ratings,
    or each of ``splits`` (split specs). Exactly one of the two. ConfigError or DataError, naming
    the value and the fix, for a fold count below 2 or above what the data allows."""
    from aerec.data.splits import kfold, parse_split

    if (folds is None) == (splits is None or len(splits) == 0):
        raise ConfigError("give either a number of folds (--folds K) or split specs (--splits u1,u2,...), not both"
                          if folds is not None else "say how to fold the data: --folds K (a random K-fold of the "
                          "ratings) or --splits SPEC,SPEC,... (e.g. u1,u2,u3,u4,u5)")
    if splits is not None and splits:
        specs = [s.strip() for s in splits]
        if any(not s for s in specs):
            raise ConfigError(f"--splits has an empty entry: {','.join(splits)!r}; write specs separated by commas, "
                              "e.g. u1,u2,u3,u4,u5")
        if len(specs) < 2:
            raise ConfigError(f"--splits {specs[0]} names one split; cross-validation needs at least 2 "
                              "(e.g. u1,u2,u3,u4,u5), and aerec train --split evaluates one")
        makers = [parse_split(s, seed=seed) for s in specs]  # a bad spec fails before any work
        return [make(ratings) for make in makers]
    check_fold_count(folds, len(ratings))
    return kfold(ratings, folds, seed=seed)


def check_fold_count(folds: Any, n_ratings: int) -> int:
    """``folds`` if ``folds``-fold cross-validation of ``n_ratings`` ratings is possible; else a
    ConfigError (below 2, not a whole number) or DataError (more folds than ratings) saying the fix."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(
            f"--folds {folds}: cross-validation needs at least 2 folds (each fold is tested by a model trained "
            "on the others); use e.g. --folds 5"
        )
    if folds > n_ratings:
        raise DataError(
            f"--folds {folds} is more folds than the data has ratings ({n_ratings:,}), so some folds would test "
            "nothing", fix=f"use at most --folds {n_ratings:,} (5 or 10 are usual)" if n_ratings >= 2 else
            "use more ratings: cross-validation needs at least 2",
        )
    return folds


# ============================================================================= one fold
def _fit_and_test(config_data: dict[str, Any], train: Ratings, test: Ratings, name: str, spec: str, k: int,
                  relevant: float | None) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Train the model and the bias baseline on ``train`` and test both on ``test``:
    ``(model record, baseline record, warnings raised)``. A top-level function, so that a
    process pool can run it."""
    from aerec import workflows
    from aerec.evaluation import evaluate_ratings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = Config.from_dict(config_data)
        data = workflows.TrainData(train, test, None, name, spec)
        plan = workflows.plan_training(config, data, scale_declared=True)
        started = time.perf_counter()
        plan.model.fit(plan.matrix)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        metrics = workflows.evaluate(plan.model, test, k=k, relevant=relevant)
        test_seconds = time.perf_counter() - started

        started = time.perf_counter()
        bias = _BiasRanker(plan.matrix)
        bias_fit = time.perf_counter() - started
        started = time.perf_counter()
        bias_metrics = evaluate_ratings(bias, test, k=k, relevant=relevant)
        bias_test = time.perf_counter() - started
    sizes = {"fold": name, "split": spec, "n_train": len(train), "n_test": len(test)}
    keys = ("rmse", "mae", f"precision@{k}", f"recall@{k}", f"ndcg@{k}")
    record = {**sizes, **{m: metrics[m] for m in keys}, "fit_seconds": fit_seconds, "test_seconds": test_seconds,
              "n_fallback": metrics["n_fallback"], "epochs": len(getattr(plan.model, "history_", None) or [])}
    baseline = {**sizes, **{m: bias_metrics[m] for m in keys}, "fit_seconds": bias_fit, "test_seconds": bias_test,
                "n_fallback": bias_metrics["n_fallback"]}
    messages = [f"{name}: {w.message}" for w in caught if not issubclass(w.category, DeprecationWarning)]
    return record, baseline, messages


class _BiasRanker:
    """The bias model dressed as a rating model for :func:`aerec.evaluation.evaluate_ratings`:
    it predicts ``mu + b_u + b_i`` (clipped to the scale) and ranks a user's unrated items by it."""

    def __init__(self, matrix: Any) -> None:
        from aerec.baseline import BiasModel

        self.model = BiasModel().fit(matrix.csr)
        self.users_, self.items_, self.scale_ = matrix.users, matrix.items, matrix.scale
        self.train_csr_ = matrix.csr
        self.item_counts_ = matrix.item_counts()
        self.user_counts_ = matrix.user_counts()

    def predict_pairs(self, users: Any, items: Any):
        import numpy as np

        from aerec.recommender import Predictions

        u = self.users_.index(np.atleast_1d(np.asarray(users, dtype=object)), unknown="missing")
        i = self.items_.index(np.atleast_1d(np.asarray(items, dtype=object)), unknown="missing")
        known = (u >= 0) & (i >= 0)
        known[known] = (self.user_counts_[u[known]] > 0) & (self.item_counts_[i[known]] > 0)
        values = np.clip(self.model.predict(u, i), self.scale_.low, self.scale_.high).astype(np.float32)
        return Predictions(values, ~known)

    def ranking_block(self, users: np.ndarray):
        import numpy as np
        import torch

        items = np.arange(len(self.items_))
        scores = self.model.predict(np.repeat(np.asarray(users), len(items)), np.tile(items, len(users)))
        scores = scores.reshape(len(users), len(items)).astype(np.float64)
        scores[:, self.item_counts_ == 0] = -np.inf  # an item nobody rated has no bias to rank it by
        return torch.from_numpy(scores)


# ============================================================================= the workflow
def cross_validate(
    data: Ratings | pd.DataFrame | str | Path,
    *,
    folds: int | None = None,
    splits: Sequence[str] | None = None,
    config: Config | Mapping[str, Any] | None = None,
    k: int = 10,
    relevant: float | None = None,
    jobs: int = 1,
    options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CVResult:
    """Cross-validate a rating model on ``data`` (ratings, a DataFrame of user, item, rating, a
    dataset name or a ratings file read with the reader ``options``).

    Give ``folds`` (a random K-fold of the ratings, seeded with ``config``'s ``run.seed``: each
    rating is in exactly one test part) or ``splits`` (split specs such as ``u1``..``u5`` or
    ``kfold:5:0``; the canonical ``uN`` files are read from the ratings' own folder).
    ``config`` holds the model's settings as for ``aerec train`` (default: the default model of
    the data). Each fold fits a fresh model, tests it (RMSE, MAE, precision/recall/NDCG at ``k``
    with test ratings >= ``relevant`` relevant) and times fit and test; the bias baseline is
    fitted and tested on the same parts. ``jobs`` > 1 runs the folds in that many processes
    (spawned; each trains with one CPU thread, ``run.threads = 1``). ``progress(done, total)``
    is called as each fold finishes. Warnings of the folds are re-raised here, once each.
    """
    from aerec.data.checks import as_ratings, require_ratings
    from aerec.data.registry import load_dataset
    from aerec.registry import is_implicit_kind

    config = _as_config(config)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs {jobs}: give a whole number of processes, at least 1 (1 runs the folds in turn)")
    kind = config.model.get("kind")
    if kind is not None and is_implicit_kind(kind):
        raise ConfigError(
            f"aerec cv cross-validates rating models (RMSE, MAE and top-N on held-out ratings); {kind!r} is an implicit "
            "top-N model, whose protocol holds out users: evaluate it with aerec train --implicit --split user:0.1 "
            "(or several seeded splits), or cross-validate a rating model (--model autorec, ...)"
        )
    if isinstance(data, (str, Path)):
        source = str(data)
        ratings = load_dataset(data, **dict(options or {}))
    else:
        ratings = as_ratings(data, "the ratings to cross-validate")
        if not hasattr(ratings, "frame"):  # a RatingMatrix
            ratings = ratings.to_ratings()
        source = ratings.source
    if ratings.implicit:
        raise ConfigError(
            f"{source} holds events without ratings (implicit feedback); aerec cv cross-validates rating models. "
            "Give the rating column with --columns, or evaluate an implicit model with aerec train --implicit --split"
        )
    require_ratings(ratings, "the ratings to cross-validate")
    seed = config.resolve_run().seed
    parts = make_folds(ratings, folds=folds, splits=splits, seed=seed)
    from aerec.workflows import fill_default_model

    fill_default_model(config, ratings)
    if jobs > 1:
        config.run["threads"] = 1
    settings = config.to_dict()
    # A fold is named by its spec (u1, ...) or, for folds=K, "fold 1".."fold K" (its spec,
    # kfold:K:I:seed=S, which aerec train --split reproduces, is in the record's "split").
    names = [s.strip() for s in splits] if folds is None else [f"fold {i + 1}" for i in range(len(parts))]
    tasks = [(settings, p.train, p.test, name, p.name or name, k, relevant) for name, p in zip(names, parts)]
    results = _run_all(tasks, jobs, progress)
    seen: set[str] = set()
    for _, _, messages in results:
        for text in messages:
            if text not in seen:
                seen.add(text)
                warnings.warn(text, stacklevel=2)
    metrics = tuple(m.replace("@10", f"@{k}") for m in FOLD_METRICS)
    return CVResult(config.kind, [r for r, _, _ in results], [b for _, b, _ in results], metrics, source, settings)


def _as_config(config: Config | Mapping[str, Any] | None) -> Config:
    if config is None:
        return Config(model={})
    if isinstance(config, Config):
        return Config.from_dict(config.to_dict())  # a copy: the kind and threads filled in here stay here
    return Config.from_dict(config)


def _run_all(tasks: list[tuple], jobs: int, progress: Callable[[int, int], None] | None) -> list[tuple]:
    """Each task's result, in task order: in this process one after another, or in ``jobs`` spawned processes."""
    total = len(tasks)
    if jobs == 1 or total == 1:
        results = []
        for done, task in enumerate(tasks, start=1):
            results.append(_fit_and_test(*task))
            if progress is not None:
                progress(done, total)
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    out: list[Any] = [None] * total
    with ProcessPoolExecutor(max_workers=min(jobs, total), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_fit_and_test, *task): i for i, task in enumerate(tasks)}
        for done, future in enumerate(as_completed(futures), start=1):
            out[futures[future]] = future.result()
            if progress is not None:
                progress(done, total)
    return out
