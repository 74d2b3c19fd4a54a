"""Contract tests for implicit top-N recommenders, and planted data whose right answer is known.

Every implicit family's test class inherits :class:`ImplicitContract` and says how to build a
small, fast model; the mixin runs the checks every estimator passes
(:class:`~aerec.testing.contract.EstimatorContract`: top-N that leaves out what it should, new
users without retraining, exact save/load through :func:`aerec.load`, errors before fitting)
and those every :class:`~aerec.implicit.ImplicitRecommender` adds (positives only, seeded
reproducibility, no ratings predicted) and that the model *learns*: on
:func:`planted_implicit`, where two groups of users like two groups of items, each user must be
recommended their group's items, and held-out users folded in (strong generalization) must
find their held-out items far better than popularity does.

>>> from aerec.testing import ImplicitContract            # doctest: +SKIP
>>> class TestMyModel(ImplicitContract):                 # doctest: +SKIP
...     def make_model(self):
...         return ImplicitRecommender("multvae", hidden=[16, 8])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from aerec.data.ratings import Ratings
from aerec.data.scale import RatingScale
from aerec.errors import ConfigError, DataError
from aerec.implicit.recommender import ImplicitRecommender
from aerec.testing.contract import EstimatorContract, assert_each_group_gets_its_items, single_thread, with_seed

__all__ = ["ImplicitContract", "PlantedImplicit", "planted_implicit"]


@dataclass(frozen=True)
class PlantedImplicit:
    """Ratings 1..5 in which group A users (``a0, a1, ...``) like (4 or 5) items ``x0, ...`` and
    group B users the ``y`` items; each also rates a few other-group items 1 or 2 (not
    positives) and likes one now and then (noise). ``ghost`` (``z0``) was rated 2 by ``a0`` only:
    it is in the vocabulary, but nobody liked it. ``test`` holds the ratings of held-out users
    ``na0, ..., nb0, ...`` drawn the same way (for strong generalization)."""

    train: Ratings
    test: Ratings
    a_users: list[str]
    b_users: list[str]
    x_items: list[str]
    y_items: list[str]
    ghost: str = "z0"

    def liked(self, user: str) -> list[str]:
        """The items ``user``'s group likes."""
        return self.x_items if user.lstrip("n").startswith("a") else self.y_items

    def positives(self, user: str, part: str = "train") -> set[str]:
        """The items ``user`` liked (rated 4 or 5) in ``part``."""
        f = getattr(self, part).frame
        return set(f.loc[(f["user"] == user) & (f["rating"] >= 4), "item"].tolist())


def planted_implicit(n_users: int = 40, n_items: int = 30, n_new: int = 16, *, p_liked: float = 0.6,
                     p_noise: float = 0.03, seed: int = 0) -> PlantedImplicit:
    """Two user groups x two item groups (see :class:`PlantedImplicit`); every user likes at
    least four of their group's items."""
    rng = np.random.default_rng(seed)
    half_i = n_items // 2
    items = np.asarray([f"x{k}" for k in range(half_i)] + [f"y{k}" for k in range(n_items - half_i)], dtype=object)
    in_x = np.arange(n_items) < half_i

    def draw(labels: list[str]) -> Ratings:
        users, its, values = [], [], []
        for label in labels:
            mine = in_x if label.lstrip("n").startswith("a") else ~in_x
            liked = np.where(mine, rng.random(n_items) < p_liked, rng.random(n_items) < p_noise)
            liked[rng.choice(np.flatnonzero(mine), size=4, replace=False)] = True
            low = ~liked & ~mine & (rng.random(n_items) < 0.3)  # seen and disliked: not a positive
            for k in np.flatnonzero(liked | low):
                users.append(label)
                its.append(items[k])
                values.append(float(rng.choice([4.0, 5.0])) if liked[k] else float(rng.choice([1.0, 2.0])))
        return users, its, values

    half_u = n_users // 2
    a, b = [f"a{k}" for k in range(half_u)], [f"b{k}" for k in range(n_users - half_u)]
    u, i, r = draw(a + b)
    u, i, r = [*u, "a0"], [*i, "z0"], [*r, 2.0]  # the ghost: known, never liked
    scale = RatingScale(1, 5, 1)
    train = Ratings.from_arrays(u, i, r, scale=scale, source="planted")
    new = [f"na{k}" for k in range(n_new // 2)] + [f"nb{k}" for k in range(n_new - n_new // 2)]
    tu, ti, tr = draw(new)
    test = Ratings.from_arrays(tu, ti, tr, scale=scale, source="planted-test")
    return PlantedImplicit(train, test, a, b, list(items[:half_i]), list(items[half_i:]))


class ImplicitContract(EstimatorContract):
    """Contract tests every implicit recommender passes. Subclass it in a ``Test...`` class and
    define :meth:`make_model`; each class fits its model three times on about 500 positives.

    Class attributes a model may tune:
        learns: False for references that ignore the user (popularity): the tests that
            expect each group's own items are skipped.
        seeded: False for fits that draw nothing at random (EASE, popularity): another seed
            need not give another model.
        min_recall: the recall@5 held-out users must reach under strong generalization.
    """

    learns: bool = True
    seeded: bool = True
    min_recall: float = 0.6

    def make_model(self) -> ImplicitRecommender:
        raise NotImplementedError("an ImplicitContract subclass must define make_model()")

    def planted(self) -> PlantedImplicit:
        return planted_implicit()

    def new_user(self, data: PlantedImplicit) -> list[str]:
        return data.x_items[:3]

    def given(self, data: PlantedImplicit, user: str) -> set[str]:
        return data.positives(user)

    def check_loaded(self, fitted: ImplicitRecommender, loaded: ImplicitRecommender, data: PlantedImplicit) -> None:
        assert fitted.evaluate(data.test) == loaded.evaluate(data.test)
        pd.testing.assert_frame_equal(loaded.history_frame(), fitted.history_frame(), check_dtype=False)

    # ------------------------------------------------------------------ fit
    def test_fit_learns_the_positives_only(self, fitted: ImplicitRecommender, data: PlantedImplicit) -> None:
        assert fitted.is_fitted and fitted.threshold_ == 4.0
        assert fitted.seen_.nnz == sum(len(data.positives(u)) for u in [*data.a_users, *data.b_users])
        assert data.ghost in fitted.items_ and not fitted.rankable_[fitted.items_.index([data.ghost])[0]]
        history = fitted.history_frame()
        first = ["l2"] if fitted.kind == "ease" else ["epoch", "loss"]
        assert list(history.columns)[: len(first) + 1] == [*first, f"val_{fitted.val_metric_}"]

    # ------------------------------------------------------------------ recommend
    def test_each_group_is_recommended_its_own_items(self, fitted: ImplicitRecommender, data: PlantedImplicit) -> None:
        if not self.learns:
            pytest.skip("a reference model that ignores the user")
        assert_each_group_gets_its_items(fitted, data, 3, seen=data.positives)

    # ------------------------------------------------------------------ new users
    def test_recommend_new_reads_a_new_users_items(self, fitted: ImplicitRecommender, data: PlantedImplicit) -> None:
        for liked, other in ((data.x_items, data.y_items), (data.y_items, data.x_items)):
            given = liked[:5]
            recs = fitted.recommend_new(given, n=4)
            assert len(recs) == 4 and set(recs["item"]).isdisjoint(given)
            assert (np.diff(recs["score"].to_numpy()) <= 0).all()
            if self.learns:
                assert set(recs["item"]) <= set(liked), f"a new user who likes {given} got {recs['item'].tolist()}"
            # Ratings: those below the threshold are no positives, but are not recommended back.
            rated = {**{item: 5.0 for item in given}, other[0]: 1.0}
            by_rating = fitted.recommend_new(rated, n=4)["item"].tolist()
            same_input = [i for i in fitted.recommend_new(given, n=5)["item"].tolist() if i != other[0]]
            assert by_rating == same_input[:4]

    def test_recommend_new_ignores_unknown_items_and_handles_none(
        self, fitted: ImplicitRecommender, data: PlantedImplicit
    ) -> None:
        with pytest.warns(UserWarning, match="does not know"):
            recs = fitted.recommend_new(["x0", "no-such-item"], n=3)
        assert len(recs) == 3 and "x0" not in set(recs["item"])
        cold = fitted.recommend_new([], n=4)  # no positives: the most-liked items
        counts = fitted.item_counts_[fitted.items_.index(cold["item"].tolist())]
        assert len(cold) == 4 and counts.min() >= np.sort(fitted.item_counts_)[-4]
        with pytest.raises(DataError):
            fitted.recommend_new({"x0": 99.0}, n=3)  # off the scale

    # ------------------------------------------------------------------ evaluation
    def test_held_out_users_find_their_items(self, fitted: ImplicitRecommender, data: PlantedImplicit) -> None:
        metrics = fitted.evaluate(data.test, metrics=["recall@5", "ndcg@10"])
        assert metrics["n_new_users"] == len({*data.test.frame["user"]}) and metrics["n_known_users"] == 0
        assert metrics["n_users"] >= 12
        if self.learns:
            assert metrics["recall@5"] >= self.min_recall, metrics
        popularity = ImplicitRecommender("popularity").fit(data.train).evaluate(data.test, metrics=["recall@5"])
        if self.learns:
            assert metrics["recall@5"] > popularity["recall@5"] + 0.2, (metrics, popularity)

    def test_it_predicts_no_ratings(self, fitted: ImplicitRecommender) -> None:
        with pytest.raises(ConfigError, match="predicts no ratings"):
            fitted.predict(["a0"], ["x0"])

    # ------------------------------------------------------------------ reproducibility
    def test_same_seed_same_model(self, fitted: ImplicitRecommender, data: PlantedImplicit) -> None:
        seed = fitted.resolved()[2].seed
        with single_thread():
            again = with_seed(fitted, seed).fit(data.train)
            other = with_seed(fitted, seed + 1).fit(data.train)
        def scores(model: ImplicitRecommender, user: str) -> np.ndarray:
            return model.recommend(user, n=10, exclude_rated=False)["score"].to_numpy()

        for user in ("a0", "b1"):
            np.testing.assert_array_equal(scores(again, user), scores(fitted, user))
        diff = max(np.abs(scores(other, u) - scores(fitted, u)).max() for u in ("a0", "b1"))
        if self.seeded:
            assert diff > 1e-6, "a different seed gave the same model"
