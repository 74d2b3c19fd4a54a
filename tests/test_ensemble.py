"""The accurate preset's ensemble (aerec.ensemble): the estimator contract on a tiny ensemble,
the blend's fit, save/load, and that the preset makes an ensemble only when asked."""

from __future__ import annotations

import numpy as np
import pytest

from aerec.config import Config
from aerec.ensemble import EnsembleRecommender, fit_blend
from aerec.errors import ConfigError
from aerec.recommender import Recommender
from aerec.testing import RecommenderContract

# The accurate preset's members, shrunk to the planted data: 16 units, a few L-BFGS epochs.
_TINY = {"epochs": 8, "lbfgs_iterations": 10, "patience": 3}


def _tiny_ensemble(**params) -> Recommender:
    return Recommender(config=Config(model={"kind": "autorec", "preset": "accurate", "hidden": [16], "l2": 1.0,
                                            **params}, train=dict(_TINY)))


class TestAccurateEnsemble(RecommenderContract):
    """Every member of the accurate preset (item and user rows, the mask input), 16 units each."""

    def make_model(self) -> Recommender:
        return _tiny_ensemble()


def test_the_preset_makes_an_ensemble_and_the_default_does_not() -> None:
    assert type(Recommender()) is Recommender
    assert type(Recommender("autorec", preset="i-autorec")) is Recommender
    model = Recommender(preset="accurate")
    assert isinstance(model, EnsembleRecommender) and isinstance(model, Recommender)
    assert model.resolved()[0].members == ["i-autorec", "u-autorec", "i-kernel"]
    assert isinstance(Recommender(config=Config(model={"kind": "autorec", "members": ["u-autorec"]})),
                      EnsembleRecommender)


def test_an_unknown_member_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="model.members.*i-autorec.*'nope'"):
        Recommender(members=["i-autorec", "nope"])


def test_the_blend_recovers_known_weights_and_falls_back_to_the_mean_on_little_data() -> None:
    rng = np.random.default_rng(0)
    parts = rng.normal(3.5, 1.0, size=(2000, 3))
    truth = 0.2 + 0.7 * parts[:, 0] + 0.25 * parts[:, 2] + rng.normal(0, 0.01, 2000)
    blend = fit_blend(parts, truth)
    assert blend.weights == pytest.approx((0.7, 0.0, 0.25), abs=0.01)
    assert blend.intercept == pytest.approx(0.2, abs=0.05)
    assert blend.fitted_on == 2000
    small = fit_blend(parts[:20], truth[:20])  # 20 ratings for 3 weights: no fit
    assert small.weights == pytest.approx((1 / 3,) * 3) and small.fitted_on == 0
