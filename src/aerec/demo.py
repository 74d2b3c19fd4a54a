"""What ``aerec demo`` does, as library calls: offline, built-in data, a minute at most.

:func:`run_demo` generates ``synthetic`` ratings (a known low-rank model, so the best possible
RMSE, the *noise floor*, is known), holds out a seeded test set, trains the default model on
the rest (model selection on a validation part carved from the training ratings, never the test
set) and compares its test RMSE with the global mean, the bias baseline
(:class:`~aerec.baseline.BiasModel`) and the noise floor; then it recommends for one known user
and for a brand-new user given a few ratings.

:func:`run_toy_demo` walks through the built-in ``toy`` 11 x 6 like/dislike matrix: it trains a small
user-based autoencoder on the 57 known cells (binary cross-entropy, chosen automatically for
0/1 data) and fills in the 9 blanks with predicted like probabilities.

The command line (``aerec.cli.demo``) only prints what these return.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aerec.baseline import BiasModel
from aerec.config import Config
from aerec.data.matrix import RatingMatrix
from aerec.data.ratings import Ratings
from aerec.evaluation import evaluate_ratings, mae, rmse
from aerec.models.families import DEFAULT_EXPLICIT

__all__ = [
    "DEMO_ITEMS",
    "DEMO_RATINGS",
    "DEMO_TEST_FRACTION",
    "DEMO_USERS",
    "DemoReport",
    "DemoRow",
    "ToyReport",
    "demo_data",
    "run_demo",
    "run_toy_demo",
    "toy_config",
]

# The demo's data: 50k ratings of 400 users on 400 items (31 % dense, 125 ratings a user and an
# item). Denser than MovieLens (6 %) so that each item has the signal to show what an
# autoencoder adds over the biases, and small so that the whole command takes a few seconds:
# the default model's L-BFGS work grows with its weights (users x 500 x 2 for item rows), so
# 1,000 users x 600 items (100k ratings, the size until 2026-12) took 9.7 s to fit against 3.8 s,
# for the same story (test RMSE 0.729 against the bias model's 0.890 then, 0.754 against 0.899
# now; docs/benchmarks.md has MovieLens-shaped figures).
DEMO_RATINGS = 50_000
DEMO_USERS = 400
DEMO_ITEMS = 400
DEMO_TEST_FRACTION = 0.1
# A brand-new user's ratings of the most-rated training items, best first: two loves, a like,
# a dislike and a hate, so the recommendations have something to go on.
NEW_USER_PATTERN = (5.0, 5.0, 4.0, 2.0, 1.0)


@dataclass
class DemoRow:
    """One line of the demo's comparison: a predictor and its test figures."""

    name: str
    rmse: float
    mae: float | None
    note: str


@dataclass
class DemoReport:
    """Everything :func:`run_demo` found (the CLI prints it)."""

    data: dict[str, Any]  # ratings, users, items, noise_floor_rmse, seed
    n_train: int
    n_test: int
    kind: str
    rows: list[DemoRow]
    metrics: dict[str, Any]  # the model's evaluate_ratings figures
    fit_seconds: float
    best_epoch: int | None
    epochs_run: int
    refit_epochs: int | None  # epochs retrained on every training rating (train.refit), or None
    known_user: Any
    known_user_count: int  # the known user's training ratings
    known_recs: pd.DataFrame  # item, score[, title]
    new_user_ratings: dict[Any, float]
    new_recs: pd.DataFrame
    model: Any = field(repr=False)  # the fitted Recommender
    seconds: float = 0.0
    out: Path | None = None


def demo_data(*, n_ratings: int = DEMO_RATINGS, n_users: int | None = DEMO_USERS,
              n_items: int | None = DEMO_ITEMS, seed: int = 0) -> Ratings:
    """The demo's synthetic ratings (``Ratings.meta["noise_floor_rmse"]`` is the noise floor)."""
    from aerec.data.synthetic import synthetic_ratings

    return synthetic_ratings(n_ratings, n_users=n_users, n_items=n_items, seed=seed)


def run_demo(
    *,
    seed: int = 0,
    n_ratings: int = DEMO_RATINGS,
    n_users: int | None = DEMO_USERS,
    n_items: int | None = DEMO_ITEMS,
    test_fraction: float = DEMO_TEST_FRACTION,
    model: str | None = None,
    config: Config | None = None,
    threads: int = 0,
    progress: bool = False,
    out: str | Path | None = None,
) -> DemoReport:
    """Generate data, train the default model, compare it with the baselines, recommend.

    Args:
        seed: the data's seed, the split's and the run's.
        n_ratings, n_users, n_items: the synthetic data's size (see :func:`demo_data`).
        test_fraction: the share of ratings held out for the test figures.
        model: the model family; default the library's default for explicit ratings.
        config: full settings instead of ``model`` (its ``run.seed`` is replaced by ``seed``).
        threads: CPU threads for training when ``config`` does not say; 0 (the default)
            chooses as ``run.threads = 0`` does: the CPUs other processes leave free right now
            (:func:`aerec.training.resolve_threads`), so busy cores get one thread and no
            spinning OpenMP team (measured before that choice: 130 s against 24 s on two
            cores at load 8), and idle ones all of them.
        progress: report each training epoch on the ``aerec.training.progress`` logger at INFO
            (the ``aerec`` command draws them as a progress bar on stderr).
        out: save the trained model (with its test metrics) to this directory.
    """
    from aerec.data.splits import random_split
    from aerec.recommender import Recommender

    started = time.perf_counter()
    ratings = demo_data(n_ratings=n_ratings, n_users=n_users, n_items=n_items, seed=seed)
    split = random_split(ratings, test_fraction, seed=seed)
    matrix = RatingMatrix.from_ratings(split.train)

    settings = config.to_dict() if config is not None else {"model": {"kind": model or DEFAULT_EXPLICIT}}
    settings.setdefault("run", {})["seed"] = seed
    settings["run"].setdefault("threads", threads)
    recommender = Recommender(config=Config.from_dict(settings, source="demo"))
    t0 = time.perf_counter()
    recommender.fit(matrix, progress=progress)
    fit_seconds = time.perf_counter() - t0
    metrics = evaluate_ratings(recommender, split.test)

    name = f"aerec {recommender.config.kind}"
    rows = [DemoRow(name, metrics["rmse"], metrics["mae"], "the autoencoder, default settings")]
    rows += _baselines(matrix, split.test)
    floor = float(ratings.meta["noise_floor_rmse"])
    rows.append(DemoRow("noise floor", floor, None, "the best any model can expect on this data"))

    counts = matrix.user_counts()
    known = int(np.argsort(counts, kind="stable")[len(counts) // 2])  # a user of typical activity
    known_user = _plain(matrix.users.label([known])[0])
    known_recs = recommender.recommend(known_user, n=5)
    new_user = _new_user(matrix)
    new_recs = recommender.recommend_new(new_user, n=5)

    out_path = None
    if out is not None:
        out_path = recommender.save(out, metrics=_plain_dict({**metrics, "data": "demo", "seed": seed}))
    result = recommender.train_result_
    return DemoReport(
        data={
            "ratings": len(ratings), "users": ratings.n_users, "items": ratings.n_items,
            "noise_floor_rmse": floor, "seed": seed,
        },
        n_train=len(split.train), n_test=len(split.test), kind=recommender.config.kind, rows=rows,
        metrics=metrics, fit_seconds=fit_seconds, best_epoch=result.best_epoch, epochs_run=len(result.history),
        refit_epochs=recommender.refit_epochs_,
        known_user=known_user, known_user_count=int(counts[known]), known_recs=known_recs,
        new_user_ratings=new_user, new_recs=new_recs, model=recommender,
        seconds=time.perf_counter() - started, out=out_path,
    )


def _baselines(matrix: RatingMatrix, test: Ratings) -> list[DemoRow]:
    """Test figures of the global mean and of the bias model, both fitted on the training matrix."""
    frame = test.frame
    truth = frame["rating"].to_numpy(np.float64)
    users = matrix.users.index(frame["user"].to_numpy(), unknown="missing")
    items = matrix.items.index(frame["item"].to_numpy(), unknown="missing")
    mean = np.full(len(truth), matrix.global_mean())
    bias = matrix.scale.clip(BiasModel().fit(matrix.csr).predict(users, items))
    return [
        DemoRow("global mean", rmse(mean, truth), mae(mean, truth), "every rating predicted as the average"),
        DemoRow("bias baseline", rmse(bias, truth), mae(bias, truth), "average + user bias + item bias"),
    ]


def _new_user(matrix: RatingMatrix) -> dict[Any, float]:
    """A brand-new user's ratings of the most-rated items (ids the model knows)."""
    popular = np.argsort(-matrix.item_counts(), kind="stable")[: len(NEW_USER_PATTERN)]
    labels = matrix.items.label(popular)
    return {_plain(label): matrix.scale.clip(np.float64(r)).item() for label, r in zip(labels, NEW_USER_PATTERN)}


# ----------------------------------------------------------------------------- toy
@dataclass
class ToyReport:
    """What :func:`run_toy_demo` found: the matrix before and after."""

    observed: pd.DataFrame  # users x items, 1 = liked, 0 = disliked, NaN = blank
    predicted: pd.DataFrame  # users x items, predicted like probability of every cell
    accuracy: float  # share of the known cells the model reproduces (probability > 0.5 <=> liked)
    kind: str
    loss: str
    model: Any = field(repr=False)
    seconds: float = 0.0
    out: Path | None = None

    @property
    def blanks(self) -> list[tuple[str, str]]:
        """The (user, item) cells that were unrated, row by row."""
        mask = self.observed.isna().to_numpy()
        return [(self.observed.index[r], self.observed.columns[c]) for r, c in zip(*np.nonzero(mask))]


def toy_config(seed: int = 0) -> Config:
    """A small U-AutoRec for the 11 x 6 toy: 3 hidden units, light L2, no validation split.

    With 57 ratings there is nothing to carve a validation set from, so it trains a fixed 10
    L-BFGS epochs; the loss is binary cross-entropy because the data is 0/1.
    """
    return Config(
        model={"kind": "autorec", "orientation": "user", "hidden": [3], "l2": 0.1},
        train={"validation": 0.0, "epochs": 10},
        run={"seed": seed, "device": "cpu", "threads": 1},  # a tiny matrix: threads only add overhead
    )


def run_toy_demo(*, seed: int = 0, out: str | Path | None = None) -> ToyReport:
    """Train on the ``toy`` like/dislike matrix and predict every cell (the blanks included)."""
    from aerec.data.synthetic import toy_ratings
    from aerec.recommender import Recommender

    started = time.perf_counter()
    ratings = toy_ratings()
    users = _natural_order(ratings.frame["user"].unique())
    items = _natural_order(ratings.frame["item"].unique())
    observed = ratings.frame.pivot(index="user", columns="item", values="rating").reindex(index=users, columns=items)
    observed = observed.astype(np.float64)
    observed.index.name, observed.columns.name = None, None

    model = Recommender(config=toy_config(seed)).fit(ratings)
    uu, ii = np.meshgrid(np.arange(len(users)), np.arange(len(items)), indexing="ij")
    values = model.predict(np.asarray(users, dtype=object)[uu.ravel()], np.asarray(items, dtype=object)[ii.ravel()])
    predicted = pd.DataFrame(values.reshape(len(users), len(items)).astype(np.float64), index=users, columns=items)

    known = observed.notna().to_numpy()
    accuracy = float(((predicted.to_numpy() > 0.5) == (observed.to_numpy() > 0.5))[known].mean())
    out_path = model.save(out, metrics={"train_accuracy": accuracy}) if out is not None else None
    return ToyReport(observed, predicted, accuracy, model.config.kind, model.loss_, model,
                     time.perf_counter() - started, out_path)


def _natural_order(labels: Any) -> list[str]:
    """``User 2`` before ``User 10``: sort by the number in the label, then by the text."""
    def key(label: str) -> tuple[int, str]:
        digits = "".join(ch for ch in str(label) if ch.isdigit())
        return (int(digits) if digits else -1, str(label))

    return sorted((str(x) for x in labels), key=key)


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _plain_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in d.items()}
