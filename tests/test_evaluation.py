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
    out = evaluate_ratings(_FixedModel(), test, k=None)
    assert "ndcg@10" not in out
    assert out["n"] == 3 and out["n_fallback"] == 1
    assert out["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert out["mae"] == pytest.approx(1.0)
    assert out["rmse_per_user"] == pytest.approx((math.sqrt(2) + 1) / 2)


class _RankingModel:
    """A stand-in rating model over users u, v and items a..e: it ranks a > b > c > d, and
    nobody rated e. User u rated a in training."""

    def __init__(self) -> None:
        import scipy.sparse as sp
        import torch

        from aerec.data.vocab import Vocabulary

        self.scale_ = RatingScale(1, 5, 1)
        self.users_ = Vocabulary(["u", "v"])
        self.items_ = Vocabulary(["a", "b", "c", "d", "e"])
        self.item_counts_ = np.array([1, 1, 1, 1, 0])
        self.train_csr_ = sp.csr_array((np.ones(1), ([0], [0])), shape=(2, 5))
        self._torch = torch

    def predict_pairs(self, users, items):
        return Predictions(np.full(len(users), 3.0, dtype=np.float32), np.zeros(len(users), dtype=bool))

    def ranking_block(self, users):
        row = np.array([4.0, 3.0, 2.0, 1.0, -np.inf])
        return self._torch.from_numpy(np.tile(row, (len(users), 1)))


def test_ranking_figures_by_hand():
    # u (rated a) gets b, c, d; v gets a, b, c, d. Relevant (>= 4): u likes c; v likes d and e,
    # but e has no training ratings, so it cannot be ranked and is left out. "w" is unknown.
    test = Ratings.from_arrays(["u", "u", "v", "v", "v", "w"], ["c", "b", "d", "e", "a", "a"],
                               [5.0, 2.0, 4.0, 5.0, 3.0, 5.0], scale=RatingScale(1, 5, 1))
    out = evaluate_ratings(_RankingModel(), test, k=2)
    assert out["relevant_from"] == 4.0 and out["n_ranked_users"] == 2
    # u: top-2 = b, c -> 1 hit; v: top-2 = a, b -> 0 hits.
    assert out["precision@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert out["recall@2"] == pytest.approx((1 + 0) / 2)
    assert out["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 2)
    strict = evaluate_ratings(_RankingModel(), test, k=2, relevant=5)  # only u's c counts
    assert strict["n_ranked_users"] == 1 and strict["precision@2"] == pytest.approx(0.5)
    with pytest.raises(Exception, match="threshold"):
        evaluate_ratings(_RankingModel(), test, k=2, relevant=9)
    with pytest.raises(Exception, match="positive whole number"):
        evaluate_ratings(_RankingModel(), test, k=0)
