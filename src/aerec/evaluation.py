"""Rating-prediction metrics and the explicit evaluation protocol (DESIGN §4).

Global RMSE and MAE over every test rating (predictions clipped to the scale), the course's
figure ``rmse_per_user`` (the mean over test users of each user's own RMSE), and the count of
test ratings that needed the bias fallback because their user or item was unseen in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aerec.data.ratings import Ratings, as_ratings
from aerec.errors import DataError

__all__ = ["rmse", "mae", "rmse_per_user", "evaluate_ratings"]


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


def require_ratings(data: Ratings, what: str = "the test data") -> Ratings:
    """``data`` when it holds ratings; event data (no rating column) is a DataError, since a
    rating model judged against events (every rating 1.0) would report a meaningless RMSE."""
    if data.implicit:
        raise DataError(
            f"{what} holds events (no rating column), and a rating model is judged on ratings", path=data.source,
            fix="give a file with a rating column (name it with --columns user,item,rating), or train a top-N "
                "model (ImplicitRecommender; on the command line --implicit)",
        )
    return data


def evaluate_ratings(model: Any, test: Ratings) -> dict[str, Any]:
    """Evaluate a fitted model on test ratings: rmse, mae, n, n_fallback, rmse_per_user.

    Test users or items the model never saw get its bias fallback and are counted; they are
    never a crash (DESIGN §6). ``test`` may be a DataFrame (see :func:`~aerec.data.ratings.as_ratings`).
    """
    test = require_ratings(as_ratings(test, "the test data"))
    frame = test.frame
    preds = model.predict_pairs(frame["user"].to_numpy(), frame["item"].to_numpy())
    truth = frame["rating"].to_numpy(dtype=np.float64)
    return {
        "rmse": rmse(preds.values, truth),
        "mae": mae(preds.values, truth),
        "n": int(len(truth)),
        "n_fallback": preds.n_fallback,
        "rmse_per_user": rmse_per_user(preds.values, truth, frame["user"].to_numpy()),
    }
