"""Rating-prediction metrics and the explicit evaluation protocol.

Global RMSE and MAE over every test rating (predictions clipped to the scale), the course's
figure ``rmse_per_user`` (the mean over test users of each user's own RMSE), and the count of
test ratings that needed the bias fallback because their user or item was unseen in training.

Rating models are also judged as rankers, as LensKit and RecBole do (:func:`ranking_metrics`):
for every test user the model knows, the candidates are all items with training ratings that
the user did not rate in training; the relevant items are the user's test ratings at or above
a threshold (default: the scale's "liked" level, 4 on 1..5); precision@K, recall@K (over
``min(K, #relevant)``) and NDCG@K are means over the users with at least one relevant item.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# require_ratings lives with the data checks; callers also import it from here.
from aerec.data.checks import as_ratings, require_ratings
from aerec.data.ratings import Ratings
from aerec.errors import DataError

__all__ = ["rmse", "mae", "rmse_per_user", "evaluate_ratings", "ranking_metrics"]


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    return float(np.sqrt(np.mean((pred - truth) ** 2))) if len(truth) else float("nan")


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    return float(np.mean(np.abs(pred - truth))) if len(truth) else float("nan")


def rmse_per_user(pred: np.ndarray, truth: np.ndarray, users: np.ndarray) -> float:
    """Mean over users of each user's RMSE (the course's test figure); each user weighs the same."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if len(truth) == 0:
        return float("nan")
    codes, _ = _codes(users)
    sq = np.bincount(codes, weights=(pred - truth) ** 2)
    n = np.bincount(codes)
    return float(np.mean(np.sqrt(sq[n > 0] / n[n > 0])))


def _codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(np.asarray(labels)))
    return codes, uniques


def evaluate_ratings(model: Any, test: Ratings, *, k: int | None = 10, relevant: float | None = None) -> dict[str, Any]:
    """Evaluate a fitted model on test ratings: rmse, mae, n, n_fallback, rmse_per_user, and
    the ranking figures of :func:`ranking_metrics` (``precision@k``, ``recall@k``,
    ``ndcg@k``, ``relevant_from``, ``n_ranked_users``; left out when ``k`` is None).

    Test users or items the model never saw get its bias fallback and are counted; they are
    never a crash. ``test`` may be a DataFrame (see :func:`~aerec.data.checks.as_ratings`).
    """
    test = require_ratings(as_ratings(test, "the test data"))
    frame = test.frame
    preds = model.predict_pairs(frame["user"].to_numpy(), frame["item"].to_numpy())
    truth = frame["rating"].to_numpy(dtype=np.float64)
    out = {
        "rmse": rmse(preds.values, truth),
        "mae": mae(preds.values, truth),
        "n": int(len(truth)),
        "n_fallback": preds.n_fallback,
        "rmse_per_user": rmse_per_user(preds.values, truth, frame["user"].to_numpy()),
    }
    return out if k is None else {**out, **ranking_metrics(model, test, k=k, relevant=relevant)}


def ranking_metrics(model: Any, test: Ratings, *, k: int = 10, relevant: float | None = None) -> dict[str, Any]:
    """precision@k, recall@k and NDCG@k of a rating model's top-k lists (module docstring).

    ``relevant`` is the lowest test rating that counts as relevant (default: the model's
    scale's :meth:`~aerec.data.scale.RatingScale.liked_from`). Test users the model does not
    know, and test items it has no training ratings of, cannot be ranked and are left out.
    """
    import scipy.sparse as sp

    from aerec.ranking import evaluate_ranking

    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise DataError("the list length k must be a positive whole number", value=k)
    scale = model.scale_
    threshold = scale.liked_from() if relevant is None else float(relevant)
    if not np.isfinite(threshold) or not scale.low < threshold <= scale.high:
        raise DataError(f"the relevance threshold must lie above {scale.low:g} and at most {scale.high:g} "
                        f"(the model's scale {scale})", value=relevant, fix="e.g. --relevant 4 on a 1..5 scale")
    frame = test.frame[test.frame["rating"].to_numpy() >= threshold - 1e-9]
    users = model.users_.index(frame["user"].to_numpy(), unknown="missing")
    items = model.items_.index(frame["item"].to_numpy(), unknown="missing")
    keep = (users >= 0) & (items >= 0)
    keep[keep] = model.item_counts_[items[keep]] > 0
    shape = (len(model.users_), len(model.items_))
    held_out = sp.csr_array((np.ones(int(keep.sum())), (users[keep], items[keep])), shape=shape)
    held_out.sum_duplicates()
    metrics = (f"precision@{k}", f"recall@{k}", f"ndcg@{k}")
    out = evaluate_ranking(model.ranking_block, model.train_csr_, held_out, metrics)
    return {**{m: out[m] for m in metrics}, "relevant_from": threshold, "n_ranked_users": out["n_users"]}
