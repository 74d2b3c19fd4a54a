"""The contract every :class:`~aerec.base.Estimator` keeps, as tests any estimator class runs.

:class:`EstimatorContract` holds what is true of rating models and top-N models alike: ``fit``
returns the estimator, fitted; lists are sorted, leave out what the user gave and what nobody
gave; bad input is a named error; a new user is answered without retraining; a saved model
loads (through :func:`aerec.load`) into the same class and gives the same answers; nothing
works before fitting. :class:`~aerec.testing.RecommenderContract` and
:class:`~aerec.testing.ImplicitContract` add what only their kind promises, and each family's
test class inherits one of them, so the shared part runs against every family of both kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aerec
from aerec.base import Estimator
from aerec.config import Config
from aerec.device import single_thread  # re-exported: the contract suites' tests use it
from aerec.errors import DataError, NotFittedError

__all__ = ["EstimatorContract", "single_thread", "with_seed"]


def with_seed(model: Estimator, seed: int) -> Estimator:
    """An unfitted copy of ``model``'s settings with ``run.seed = seed``."""
    c = model.config
    config = Config(model=dict(c.model), train=dict(c.train), run={**c.run, "seed": seed})
    return type(model)(config=config)


def assert_each_group_gets_its_items(fitted: Estimator, data: Any, n: int, seen: Callable[[str], set]) -> None:
    """The first five users of each planted group are recommended only items their group likes:
    a list of ``n`` (fewer for a user who has ``seen`` most of those items in training)."""
    for user in [*data.a_users[:5], *data.b_users[:5]]:
        liked = set(data.liked(user))
        k = min(n, len(liked - seen(user)))
        top = fitted.recommend(user, n=k)["item"].tolist()
        assert set(top) <= liked, f"{user} should be recommended {sorted(liked)}; got {top}"


class EstimatorContract:
    """Contract tests shared by every estimator. Do not subclass it directly: inherit
    :class:`~aerec.testing.RecommenderContract` (rating models) or
    :class:`~aerec.testing.ImplicitContract` (top-N models), which supply the hooks below.

    Planted data of both kinds has users ``a0, a1, ...`` and ``b0, ...`` and items ``x0, ...``
    and ``y0, ...``; ``ghost`` is an item in the vocabulary that no training user gave.
    """

    device: str = "cpu"
    """Where models run unless ``make_model`` names a ``run.device`` (CPU by default: the
    seeded-run tests want bitwise equality, which GPU kernels do not promise)."""

    # ------------------------------------------------------------------ hooks
    def make_model(self) -> Estimator:
        """An unfitted estimator with small, fast settings (few epochs, small layers)."""
        raise NotImplementedError(f"{type(self).__name__} must define make_model()")

    def planted(self) -> Any:
        """The planted data the contract runs on."""
        raise NotImplementedError

    def training_data(self, data: Any) -> Any:
        """What ``fit`` is given."""
        return data.train

    def new_user(self, data: Any) -> Any:
        """A new user's input to ``recommend_new``: a few items of group X."""
        raise NotImplementedError

    def given(self, data: Any, user: str) -> set[str]:
        """The items ``user`` gave in training, which their lists leave out."""
        raise NotImplementedError

    def check_loaded(self, fitted: Any, loaded: Any, data: Any) -> None:
        """Further checks that a loaded copy answers as ``fitted`` does (per kind)."""

    def unfitted_calls(self, model: Any, data: Any) -> list[Callable[[], Any]]:
        """Further calls an unfitted model of this kind must refuse with NotFittedError."""
        return []

    # ------------------------------------------------------------------ fixtures
    # Class-scoped, so each class fits its model once; pytest wants such fixtures as class
    # methods, hence the fresh instance to reach the hooks.
    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> Any:
        return cls().planted()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data: Any) -> Any:
        contract = cls()
        model = contract.make_model()
        model.config.run.setdefault("device", cls.device)
        # One thread, pinned: with run.threads = 0 the count follows the load average, and a
        # different count sums in another order (the same-seed test compares bit for bit).
        model.config.run.setdefault("threads", 1)
        assert not model.is_fitted
        with single_thread():
            out = model.fit(contract.training_data(data))
        assert out is model, "fit must return the model itself"
        return model

    # ------------------------------------------------------------------ fit
    def test_fit_gives_a_fitted_estimator_of_its_kind(self, fitted: Estimator) -> None:
        assert isinstance(fitted, Estimator) and fitted.is_fitted
        assert fitted.kind == self.make_model().kind
        assert fitted.family.feedback == fitted.feedback
        assert len(fitted.users_) > 0 and len(fitted.items_) > 0

    # ------------------------------------------------------------------ recommend
    def test_recommend_rejects_bad_input(self, fitted: Estimator) -> None:
        with pytest.raises(DataError):
            fitted.recommend("a0", n=0)
        with pytest.raises(DataError):
            fitted.recommend("nobody", n=3)  # unknown users go through recommend_new

    def test_lists_leave_out_given_and_never_given_items_and_are_sorted(self, fitted: Estimator, data: Any) -> None:
        n_items = len(data.x_items) + len(data.y_items)
        for user in (data.a_users[0], data.b_users[-1]):
            given = self.given(data, user)
            recs = fitted.recommend(user, n=n_items + 5)
            assert set(recs["item"]).isdisjoint(given) and data.ghost not in set(recs["item"])
            assert len(recs) == n_items - len(given) and recs["item"].is_unique  # every other item, once
            assert (np.diff(recs["score"].to_numpy()) <= 0).all(), "recommendations must be sorted by score"
            assert ("prediction" in recs.columns) == fitted.predicts_ratings
            assert fitted.recommend(user, n=3)["item"].tolist() == recs["item"].tolist()[:3]
            everything = fitted.recommend(user, n=n_items + 5, exclude_rated=False)
            assert set(everything["item"]) == {*data.x_items, *data.y_items}

    def test_similar_items_are_sorted_cosines_without_the_item_or_unrated_ones(self, fitted: Estimator,
                                                                                data: Any) -> None:
        n_items = len(data.x_items) + len(data.y_items)
        item = data.x_items[0]
        found = fitted.similar_items(item, n=n_items + 5)
        assert set(found["item"]) == {*data.x_items, *data.y_items} - {item}  # every other rated item, once
        scores = found["score"].to_numpy()
        assert (np.diff(scores) <= 1e-12).all() and (np.abs(scores) <= 1 + 1e-9).all()
        assert fitted.similar_items(item, n=3)["item"].tolist() == found["item"].tolist()[:3]
        for bad in ("nobody-knows-this-item", data.ghost):
            with pytest.raises(DataError):
                fitted.similar_items(bad)
        with pytest.raises(DataError):
            fitted.similar_items(item, n=0)

    def test_recommend_batch_gives_the_lists_of_recommend(self, fitted: Estimator, data: Any) -> None:
        users = [data.a_users[0], data.b_users[1], data.a_users[2]]
        batch = fitted.recommend_batch(users, n=4, chunk=2)  # two chunks
        assert ("prediction" in batch.columns) == fitted.predicts_ratings
        for user in users:
            one = fitted.recommend(user, n=4)
            rows = batch[batch["user"] == user]
            assert rows["rank"].tolist() == list(range(1, len(one) + 1))
            scores = one["score"].to_numpy(dtype=float)
            np.testing.assert_allclose(rows["score"].to_numpy(dtype=float), scores, rtol=1e-6, atol=1e-9)
            # Items of equal score may come in either order (popularity ties); the others may not.
            gaps = np.abs(np.diff(scores)) > 1e-9 * np.maximum(1.0, np.abs(scores[1:]))
            alone = np.r_[True, gaps] & np.r_[gaps, True]  # (n,): no neighbour with the same score
            assert np.asarray(rows["item"].tolist())[alone].tolist() == np.asarray(one["item"].tolist())[alone].tolist()

    # ------------------------------------------------------------------ new users
    def test_recommend_new_answers_without_retraining(self, fitted: Estimator, data: Any) -> None:
        new = self.new_user(data)
        recs = fitted.recommend_new(new, n=4)
        assert len(recs) == 4 and set(recs["item"]).isdisjoint(new)
        assert (np.diff(recs["score"].to_numpy()) <= 0).all()
        with pytest.raises(DataError):
            fitted.recommend_new(new, n=0)

    # ------------------------------------------------------------------ persistence
    def test_save_load_gives_identical_answers(self, fitted: Estimator, data: Any, tmp_path: Path) -> None:
        loaded = aerec.load(fitted.save(tmp_path / "model"))
        assert type(loaded) is type(fitted) and loaded.kind == fitted.kind
        assert type(type(fitted).load(tmp_path / "model")) is type(fitted)
        for user in ("a0", "b3"):
            a, b = fitted.recommend(user, n=6), loaded.recommend(user, n=6)
            assert a["item"].tolist() == b["item"].tolist()
            np.testing.assert_allclose(a["score"], b["score"], rtol=0, atol=1e-6)
        new = self.new_user(data)
        a, b = fitted.recommend_new(new, n=6), loaded.recommend_new(new, n=6)
        assert a["item"].tolist() == b["item"].tolist()
        np.testing.assert_allclose(a["score"], b["score"], rtol=0, atol=1e-6)
        assert list(loaded.history_frame().columns) == list(fitted.history_frame().columns)
        assert len(loaded.history_frame()) == len(fitted.history_frame())
        self.check_loaded(fitted, loaded, data)

    # ------------------------------------------------------------------ before fit
    def test_unfitted_use_raises_not_fitted(self, data: Any, tmp_path: Path) -> None:
        model = self.make_model()
        calls: list[Callable[[], Any]] = [
            lambda: model.recommend("a0"),
            lambda: model.recommend_batch(["a0"]),
            lambda: model.recommend_new(self.new_user(data)),
            lambda: model.evaluate(data.test),
            lambda: model.save(tmp_path / "never"),
            *self.unfitted_calls(model, data),
        ]
        for call in calls:
            with pytest.raises(NotFittedError):
                call()
        assert not (tmp_path / "never").exists()
