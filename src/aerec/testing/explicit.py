"""Contract tests for rating models, and planted ratings whose right answer is known.

Every rating family's test class inherits :class:`RecommenderContract` and says how to build a
small, fast model; the mixin runs the checks every estimator passes
(:class:`~aerec.testing.contract.EstimatorContract`) and those every
:class:`~aerec.recommender.Recommender` adds (predictions on the scale, relevance scores,
seeded reproducibility, new-user fold-in, the unknown-id fallback, exact predictions after
save/load) and
that the model actually *learns*: on :func:`planted_ratings`, where two groups of users have
opposite tastes for two groups of items, it must beat the bias baseline by a wide margin and
recommend each group its own items. :mod:`aerec.testing` shows a family's test class in full.

Needs pytest (``pip install aerec[test]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from aerec.baseline import BiasModel
from aerec.data.matrix import RatingMatrix
from aerec.data.ratings import Ratings
from aerec.data.scale import RatingScale
from aerec.data.vocab import Vocabulary
from aerec.errors import DataError
from aerec.evaluation import evaluate_ratings, rmse
from aerec.recommender import Recommender
from aerec.testing.contract import EstimatorContract, assert_each_group_gets_its_items, single_thread, with_seed

__all__ = ["PlantedData", "RecommenderContract", "planted_ratings"]


# ----------------------------------------------------------------------------- planted data
@dataclass(frozen=True)
class PlantedData:
    """Ratings with a known structure, split into what a model sees and what it must guess.

    Users ``a0, a1, ...`` (group A) rate items ``x0, x1, ...`` 4 or 5 and items ``y0, ...`` 1 or
    2; users ``b0, ...`` (group B) the other way round. ``ghost`` is an item label in the
    training vocabulary that nobody rated (see :meth:`train_matrix`).
    """

    train: Ratings
    test: Ratings  # the hidden cells
    a_users: list[str]
    b_users: list[str]
    x_items: list[str]
    y_items: list[str]
    ghost: str = "z0"

    def train_matrix(self) -> RatingMatrix:
        """The training ratings as a matrix whose item vocabulary also holds the unrated ``ghost``."""
        items = Vocabulary([*self.x_items, *self.y_items, self.ghost], name="item")
        return RatingMatrix.from_ratings(self.train, items=items)

    def liked(self, user: str) -> list[str]:
        """The items ``user``'s group loves."""
        return self.x_items if user.startswith("a") else self.y_items

    def rated(self, user: str) -> set[str]:
        """The items ``user`` rated in the training part."""
        f = self.train.frame
        return set(f.loc[f["user"] == user, "item"].tolist())


def planted_ratings(
    n_users: int = 40, n_items: int = 30, *, hidden: float = 0.4, binary: bool = False, seed: int = 0
) -> PlantedData:
    """Two user groups x two item groups with opposite tastes; ``hidden`` of each user's cells
    in each item group are held out as the test part.

    Every cell is rated (A-X and B-Y: 5 with probability 0.7, else 4; A-Y and B-X: 1 with
    probability 0.7, else 2), so the best possible RMSE on hidden cells is about 0.46, while
    the bias model, which sees only average users and items, stays near 1.9. With ``binary``
    the data is like (1) / dislike (0) on the scale 0..1: a group likes its own items with
    probability 0.95 and the others with 0.05 (best RMSE about 0.22, bias model about 0.5); the
    zeros are real ratings. The hold-out is drawn per user and item group, so every user keeps
    ratings of both groups.
    """
    rng = np.random.default_rng(seed)
    half_u, half_i = n_users // 2, n_items // 2
    users = [f"a{k}" for k in range(half_u)] + [f"b{k}" for k in range(n_users - half_u)]
    items = [f"x{k}" for k in range(half_i)] + [f"y{k}" for k in range(n_items - half_i)]
    in_a = np.arange(n_users) < half_u  # (n_users,)
    in_x = np.arange(n_items) < half_i  # (n_items,)
    loves = in_a[:, None] == in_x[None, :]  # (n_users, n_items)
    if binary:
        values = np.where(rng.random(loves.shape) < 0.95, loves, ~loves).astype(np.float64)
    else:
        high = np.where(rng.random(loves.shape) < 0.7, 5.0, 4.0)
        low = np.where(rng.random(loves.shape) < 0.7, 1.0, 2.0)
        values = np.where(loves, high, low)
    held = np.zeros(loves.shape, dtype=bool)
    for u in range(n_users):
        for group in (np.flatnonzero(in_x), np.flatnonzero(~in_x)):
            k = int(round(hidden * len(group)))
            held[u, rng.choice(group, size=k, replace=False)] = True
    uu, ii = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    labels_u, labels_i = np.asarray(users)[uu.ravel()], np.asarray(items)[ii.ravel()]
    scale = RatingScale(0, 1, 1) if binary else RatingScale(1, 5, 1)
    keep = ~held.ravel()
    train = Ratings.from_arrays(labels_u[keep], labels_i[keep], values.ravel()[keep], scale=scale, source="planted")
    test = Ratings.from_arrays(labels_u[~keep], labels_i[~keep], values.ravel()[~keep], scale=scale, source="planted")
    return PlantedData(train, test, users[:half_u], users[half_u:], items[:half_i], items[half_i:])


# ----------------------------------------------------------------------------- helpers
def _all_cells(data: PlantedData) -> tuple[np.ndarray, np.ndarray]:
    users = [*data.a_users, *data.b_users]
    items = [*data.x_items, *data.y_items]
    uu, ii = np.meshgrid(np.arange(len(users)), np.arange(len(items)), indexing="ij")
    return np.asarray(users, dtype=object)[uu.ravel()], np.asarray(items, dtype=object)[ii.ravel()]


# ----------------------------------------------------------------------------- the contract
class RecommenderContract(EstimatorContract):
    """Contract tests every rating model passes. Subclass it in a ``Test...`` class and define
    :meth:`make_model`; each test class fits its model three times on a few hundred ratings.

    Class attributes a model may tune:
        accuracy_ratio: the model's RMSE on the hidden planted cells must be below this times
            the bias baseline's (on the default data the baseline's is about 1.8 and the best
            possible about 0.46, a ratio of 0.25; like/dislike data needs about 0.6).
        new_user_ratings: how many of a new user's items the fold-in test gives per item group.
        device: where models run (see :class:`~aerec.testing.contract.EstimatorContract`).
    """

    accuracy_ratio: float = 0.5
    new_user_ratings: int = 4

    def make_model(self) -> Recommender:
        """An unfitted recommender with small, fast settings (few epochs, small layers)."""
        raise NotImplementedError("a RecommenderContract subclass must define make_model()")

    def planted(self) -> PlantedData:
        """The data the contract runs on (override to change its size)."""
        return planted_ratings()

    def training_data(self, data: PlantedData) -> RatingMatrix:
        return data.train_matrix()  # with the ghost item nobody rated

    def new_user(self, data: PlantedData) -> dict[str, float]:
        scale = data.train.scale
        return {"x0": scale.high, "x1": scale.high, "y0": scale.low, "y1": scale.low}

    def given(self, data: PlantedData, user: str) -> set[str]:
        return data.rated(user)

    def check_loaded(self, fitted: Recommender, loaded: Recommender, data: PlantedData) -> None:
        users, items = _all_cells(data)
        users = np.append(users, "nobody")
        items = np.append(items, "x0")
        np.testing.assert_allclose(loaded.predict(users, items), fitted.predict(users, items), rtol=0, atol=1e-6)
        assert loaded.history_frame()["epoch"].tolist() == fitted.history_frame()["epoch"].tolist()

    def unfitted_calls(self, model: Recommender, data: PlantedData) -> list[Callable[[], object]]:
        return [lambda: model.predict(["a0"], ["x0"])]

    # ------------------------------------------------------------------ fit and predict
    def test_fit_records_history(self, fitted: Recommender) -> None:
        assert fitted.is_fitted
        history = fitted.history_frame()
        assert len(history) >= 1
        assert history["epoch"].tolist() == list(range(1, len(history) + 1))
        assert np.isfinite(history["loss"]).all()

    def test_predictions_are_inside_the_scale(self, fitted: Recommender, data: PlantedData) -> None:
        users, items = _all_cells(data)
        users = np.append(users, ["a0", "nobody"])
        items = np.append(items, [data.ghost, "x0"])
        values = fitted.predict(users, items)
        assert values.shape == (len(users),) and values.dtype == np.float32
        assert np.isfinite(values).all()
        assert values.min() >= fitted.scale_.low and values.max() <= fitted.scale_.high

    def test_unknown_users_and_items_get_the_fallback_and_are_counted(
        self, fitted: Recommender, data: PlantedData
    ) -> None:
        users = ["nobody", "a0", "a0", "b1", "nobody"]
        items = ["x0", "no-such-item", data.ghost, "y1", "nothing"]
        pred = fitted.predict_pairs(users, items)
        assert pred.fallback.tolist() == [True, True, True, False, True]
        assert pred.n_fallback == 4
        # The fallback is the bias model: mu (+ the known side's bias), clipped to the scale.
        u = fitted.users_.index(users, unknown="missing")
        i = fitted.items_.index(items, unknown="missing")
        expected = np.clip(fitted.bias_.predict(u, i), fitted.scale_.low, fitted.scale_.high)
        np.testing.assert_allclose(pred.values[pred.fallback], expected[pred.fallback], atol=1e-6)
        top = fitted.scale_.high
        test = Ratings.from_arrays(["nobody", "a0"], ["x0", "x1"], [top, top], scale=fitted.scale_)
        assert evaluate_ratings(fitted, test)["n_fallback"] == 1

    # ------------------------------------------------------------------ recommend
    def test_list_scores_are_relevances_and_predictions_lie_on_the_scale(
        self, fitted: Recommender, data: PlantedData
    ) -> None:
        n_items = len(data.x_items) + len(data.y_items)
        for user in (data.a_users[0], data.b_users[-1]):
            recs = fitted.recommend(user, n=n_items + 5)
            scores = recs["score"].to_numpy()
            assert (scores > 0).all() and (scores <= 1).all(), "the score is a relevance in (0, 1]"
            predictions = recs["prediction"].to_numpy()
            assert (predictions >= fitted.scale_.low).all() and (predictions <= fitted.scale_.high).all()

    def test_recommendations_for_each_group_come_from_its_items(self, fitted: Recommender, data: PlantedData) -> None:
        assert_each_group_gets_its_items(fitted, data, 5, seen=data.rated)

    # ------------------------------------------------------------------ new users
    def test_recommend_new_folds_in_a_new_user(self, fitted: Recommender, data: PlantedData) -> None:
        k, scale = self.new_user_ratings, data.train.scale
        for liked, disliked in ((data.x_items, data.y_items), (data.y_items, data.x_items)):
            ratings = {**{item: scale.high for item in liked[:k]}, **{item: scale.low for item in disliked[:k]}}
            recs = fitted.recommend_new(ratings, n=5)
            assert len(recs) == 5
            assert set(recs["item"]).isdisjoint(ratings)
            assert (np.diff(recs["score"].to_numpy()) <= 0).all()
            assert set(recs["item"]) <= set(liked), f"a new user who likes {liked[:k]} got {recs['item'].tolist()}"

    def test_recommend_new_refuses_or_drops_unknown_items_and_handles_none(
        self, fitted: Recommender, data: PlantedData
    ) -> None:
        ratings = {"x0": fitted.scale_.high, "no-such-item": fitted.scale_.high}
        with pytest.raises(DataError, match="no-such-item"):
            fitted.recommend_new(ratings, n=3)  # a typo must not pass silently
        with pytest.warns(UserWarning, match="does not know"):
            recs = fitted.recommend_new(ratings, n=3, unknown="warn")
        assert len(recs) == 3 and "x0" not in set(recs["item"])
        assert len(fitted.recommend_new({}, n=4)) == 4  # no ratings: the bias model's favourites
        with pytest.raises(DataError):
            fitted.recommend_new({"x0": 99.0}, n=3)  # off the scale

    # ------------------------------------------------------------------ reproducibility
    def test_same_seed_same_model_other_seed_other_model(self, fitted: Recommender, data: PlantedData) -> None:
        users, items = _all_cells(data)
        seed = fitted.resolved()[2].seed
        with single_thread():
            again = with_seed(fitted, seed).fit(data.train_matrix())
            other = with_seed(fitted, seed + 1).fit(data.train_matrix())
        reference = fitted.predict(users, items)
        np.testing.assert_array_equal(again.predict(users, items), reference)
        assert [r.loss for r in again.history_] == [r.loss for r in fitted.history_]
        assert np.abs(other.predict(users, items) - reference).max() > 1e-4, "a different seed gave the same model"

    # ------------------------------------------------------------------ it learns
    def test_learns_the_planted_structure(self, fitted: Recommender, data: PlantedData) -> None:
        test = data.test.frame
        truth = test["rating"].to_numpy()
        model_rmse = rmse(fitted.predict(test["user"].to_numpy(), test["item"].to_numpy()), truth)
        matrix = data.train_matrix()
        bias = BiasModel().fit(matrix.csr)
        u, i = matrix.users.index(test["user"].to_numpy()), matrix.items.index(test["item"].to_numpy())
        scale = matrix.scale
        base_rmse = rmse(np.clip(bias.predict(u, i), scale.low, scale.high), truth)
        # The planted data is built so that biases explain nothing: the baseline is about as far
        # off as always guessing the middle of the scale.
        assert base_rmse > 0.375 * (scale.high - scale.low)
        assert model_rmse < self.accuracy_ratio * base_rmse, (
            f"RMSE on hidden cells {model_rmse:.3f} is not far below the bias baseline's {base_rmse:.3f}"
        )
