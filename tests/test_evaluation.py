"""Rating metrics on hand-computed cases, and the evaluation protocol's fallback count."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aerec.data.ratings import Ratings
from aerec.data.scale import RatingScale
from aerec.evaluation import evaluate_ratings, mae, rmse, rmse_per_user
from aerec.recommender import Predictions


def test_rmse_and_mae_by_hand():
    pred, truth = [3.0, 4.0, 1.0, 5.0], [3.0, 2.0, 2.0, 5.0]  # errors 0, 2, -1, 0
    assert rmse(pred, truth) == pytest.approx(math.sqrt(5 / 4))
    assert mae(pred, truth) == pytest.approx(3 / 4)


def test_perfect_and_empty():
    assert rmse([1, 2], [1, 2]) == 0.0 and mae([1, 2], [1, 2]) == 0.0
    assert math.isnan(rmse([], [])) and math.isnan(mae([], [])) and math.isnan(rmse_per_user([], [], []))


def test_rmse_per_user_weighs_users_equally():
    # User "a" has three ratings with errors 0, 0, 3 -> RMSE sqrt(3); user "b" one with error 1.
    pred = [1.0, 2.0, 5.0, 4.0]
    truth = [1.0, 2.0, 2.0, 3.0]
    users = np.array(["a", "a", "a", "b"])
    assert rmse_per_user(pred, truth, users) == pytest.approx((math.sqrt(3) + 1) / 2)
    # The global figure weighs ratings instead: sqrt((9 + 1) / 4).
    assert rmse(pred, truth) == pytest.approx(math.sqrt(10 / 4))
    # Order and label type do not matter.
    assert rmse_per_user(pred[::-1], truth[::-1], np.array([7, 3, 3, 3])) == pytest.approx((math.sqrt(3) + 1) / 2)


class _FixedModel:
    """A stand-in model: predicts 3 everywhere, and user "new" is unknown (fallback)."""

    def predict_pairs(self, users, items):
        users = np.asarray(users)
        return Predictions(np.full(len(users), 3.0, dtype=np.float32), users == "new")


def test_evaluate_ratings_reports_every_figure():
    test = Ratings.from_arrays(["u", "u", "new"], ["i", "j", "i"], [5.0, 3.0, 4.0], scale=RatingScale(1, 5, 1))
    out = evaluate_ratings(_FixedModel(), test)
    assert out["n"] == 3 and out["n_fallback"] == 1
    assert out["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert out["mae"] == pytest.approx(1.0)
    assert out["rmse_per_user"] == pytest.approx((math.sqrt(2) + 1) / 2)
