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
    # One fit of the preset's members (bags=1): bagging has its own tests below.
    return EnsembleRecommender(config=Config(model={"kind": "autorec", "preset": "accurate", "hidden": [16], "l2": 1.0,
                                                    "bags": 1, **params}, train=dict(_TINY)))


class TestAccurateEnsemble(RecommenderContract):
    """Every member of the accurate preset (item and user rows, the mask input), 16 units each."""

    def make_model(self) -> Recommender:
        return _tiny_ensemble()


def test_the_preset_makes_an_ensemble_and_the_default_does_not() -> None:
    from aerec.ensemble import rating_model

    assert type(rating_model(Config(model={"kind": "autorec"}))) is Recommender
    assert type(rating_model(Config(model={"kind": "autorec", "preset": "i-autorec"}))) is Recommender
    model = rating_model(Config(model={"kind": "autorec", "preset": "accurate"}))  # what aerec train makes
    assert isinstance(model, EnsembleRecommender) and isinstance(model, Recommender)
    assert model.resolved()[0].members == ["i-autorec", "u-autorec", "i-kernel", "i-dae"]
    assert EnsembleRecommender(preset="accurate").resolved()[0].members == ["i-autorec", "u-autorec", "i-kernel", "i-dae"]
    assert EnsembleRecommender(preset="accurate").resolved()[0].bags == 3  # three fits averaged (bagging)
    assert type(rating_model(Config(model={"kind": "autorec", "members": ["u-autorec"]}))) is EnsembleRecommender


def test_each_estimator_refuses_the_others_settings() -> None:
    # A plain Recommender would silently train one network of an ensemble's settings: refused,
    # naming the class to use; an ensemble without members has nothing to blend.
    with pytest.raises(ConfigError, match="EnsembleRecommender"):
        Recommender(preset="accurate")
    with pytest.raises(ConfigError, match="preset=.accurate."):
        EnsembleRecommender()


def test_an_unknown_member_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="model.members.*i-autorec.*'nope'"):
        EnsembleRecommender(members=["i-autorec", "nope"])


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


def test_members_see_the_ratings_on_1_to_5_and_the_settings_the_user_gave() -> None:
    from aerec.data.scale import RatingScale
    from aerec.ensemble import Rescale, member_config

    assert Rescale.of(RatingScale(1, 5, 1)) is None and Rescale.of(RatingScale(0, 1, 1)) is None
    wide = Rescale.of(RatingScale(1, 100, 1))
    np.testing.assert_allclose(wide.to_members([1, 100, 50.5]), [1, 5, 3])
    np.testing.assert_allclose(wide.to_data(wide.to_members([7.0, 93.0])), [7.0, 93.0])
    plain = Config(model={"kind": "autorec", "preset": "accurate"})
    assert member_config("i-kernel", plain, 3).model["l2"] == 20.0  # the recipe's own
    mine = Config(model={"kind": "autorec", "preset": "accurate", "l2": 7.0})
    assert member_config("i-kernel", mine, 3).model["l2"] == 7.0  # a value the user set applies to every member
    assert member_config("u-autorec", mine, 3).run["seed"] == 3


def test_the_kernel_member_keeps_a_longer_patience_unless_the_user_sets_one() -> None:
    from aerec.ensemble import member_config
    from aerec.recommender import Recommender

    def patience(config: Config) -> int:
        return Recommender(config=config).resolved()[1].patience

    plain = Config(model={"kind": "autorec", "preset": "accurate"})
    assert patience(Config(model={"kind": "autorec"})) == 4  # the family's default
    assert patience(member_config("i-autorec", plain, 0)) == 4
    assert patience(member_config("i-kernel", plain, 0)) == 6  # its curve improves over long plateaus
    mine = Config(model={"kind": "autorec", "preset": "accurate"}, train={"patience": 9})
    assert patience(member_config("i-kernel", mine, 0)) == 9


def test_the_ensemble_predicts_on_a_1_to_100_scale_and_beats_the_bias_model(tmp_path) -> None:
    import aerec

    from aerec.baseline import BiasModel
    from aerec.data.ratings import Ratings
    from aerec.data.scale import RatingScale
    from aerec.testing import planted_ratings

    data = planted_ratings()
    to100 = lambda frame: frame.assign(rating=1 + (frame["rating"] - 1) * 99 / 4)  # noqa: E731
    scale = RatingScale(1, 100, 0)
    train = Ratings.from_frame(to100(data.train.frame), scale=scale)
    test = to100(data.test.frame)
    model = _tiny_ensemble().fit(train)
    pred = model.predict(test["user"].to_numpy(), test["item"].to_numpy())
    assert pred.min() >= 1 and pred.max() <= 100
    bias = BiasModel().fit(train)
    base = np.clip(bias.predict(bias.users_.index(test["user"].to_numpy()), bias.items_.index(test["item"].to_numpy())),
                   1, 100)
    rmse = lambda p: float(np.sqrt(np.mean((p - test["rating"].to_numpy()) ** 2)))  # noqa: E731
    assert rmse(pred) < 0.7 * rmse(base)
    assert model.members_[0].scale_.high == 5  # the members trained on the ratings mapped onto 1..5
    loaded = aerec.load(model.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict(test["user"].to_numpy(), test["item"].to_numpy()), pred, rtol=1e-5)
    new_user = {"x0": 100.0, "y0": 1.0}
    np.testing.assert_allclose(loaded.recommend_new(new_user, n=3)["prediction"],
                               model.recommend_new(new_user, n=3)["prediction"], rtol=1e-5)


def test_kernelised_weights_are_gated_and_penalised() -> None:
    import torch

    from aerec.models.kernel import KernelAutoencoder, KernelLinear

    torch.manual_seed(0)
    layer = KernelLinear(6, 4, dim=2)
    assert torch.allclose(layer.kernel(), torch.ones(4, 6), atol=1e-4)  # points start together: dense
    with torch.no_grad():
        layer.v[0] += 5.0  # unit 0's point far from every input's: its weights are cut
    assert torch.all(layer.weight[0] == 0) and torch.all(layer.weight[1:] != 0)
    net = KernelAutoencoder(6, [4], kernel_dim=2, kernel_l2=2.0, l2=4.0)
    with torch.no_grad():
        layers = [*net.encoder, *net.decoder]
        expected = sum(float(k.raw_weight.pow(2).sum()) + 0.5 * float(k.kernel().pow(2).sum()) for k in layers)
        assert float(net.weight_norm2()) == pytest.approx(expected, rel=1e-5)


def test_a_given_validation_set_chooses_without_a_refit() -> None:
    from aerec.testing import planted_ratings

    data = planted_ratings()
    model = _tiny_ensemble().fit(data.train, data.test)
    assert model.refit_epochs_ is None  # as Recommender: a validation set given is never refitted on
    assert model.blend_.fitted_on == len(data.test)  # the weights were fitted on the given ratings
    assert min(model.blend_.weights) >= 0 and sum(model.blend_.weights) > 0
    assert model.train_result_.best_val is not None
    fitted = _tiny_ensemble().fit(data.train)
    assert len(fitted.refit_epochs_) == 4 and all(e >= 1 for e in fitted.refit_epochs_)


def test_each_member_refits_as_its_refit_start_says() -> None:
    # "selected" (the autorec family's default): a member's selection-run weights go on for
    # ceil(best / 3) epochs on every rating, over every rating's bias model, as the default
    # model's refit does; "fresh": a new network for its best epoch count.
    import torch

    from aerec.testing import planted_ratings
    from tests.conftest import continue_by_hand

    data = planted_ratings()

    def two(train: dict) -> EnsembleRecommender:
        return EnsembleRecommender(config=Config(
            model={"kind": "autorec", "members": ["i-autorec", "u-autorec"], "hidden": [16], "l2": 1.0},
            train={**_TINY, **train})).fit(data.train)

    fresh, refitted, selected = two({"refit_start": "fresh"}), two({}), two({"refit": False})
    bests = [m.train_result_.best_epoch for m in selected.members_]
    assert all(b >= 1 for b in bests)
    assert fresh.refit_epochs_ == bests
    assert refitted.refit_epochs_ == [-(-b // 3) for b in bests]
    assert selected.refit_epochs_ is None and selected.blend_ == refitted.blend_  # the blend is the selection's
    for by_hand, member in zip(selected.members_, refitted.members_):
        net = continue_by_hand(by_hand, refitted.train_csr_, member.rows_, member.refit_epochs_)
        for name, value in net.state_dict().items():
            torch.testing.assert_close(member.net_.state_dict()[name], value)
    for a, b in zip(fresh.members_, refitted.members_):
        assert not torch.equal(a.net_.encoder[0].weight, b.net_.encoder[0].weight)


class TestBaggedEnsemble(RecommenderContract):
    """Two bags of two members (model.bags): one ensemble of four networks."""

    def make_model(self) -> Recommender:
        return EnsembleRecommender(config=Config(
            model={"kind": "autorec", "members": ["i-autorec", "u-autorec"], "hidden": [16], "l2": 1.0, "bags": 2},
            train=dict(_TINY)))


def test_bagging_averages_ensembles_fitted_with_their_own_seeds(tmp_path) -> None:
    import torch

    import aerec
    from aerec.ensemble import BAG_SEED_STEP
    from aerec.testing import planted_ratings

    data = planted_ratings()
    model = {"kind": "autorec", "members": ["i-autorec", "u-autorec"], "hidden": [16], "l2": 1.0}
    bagged = EnsembleRecommender(config=Config(model={**model, "bags": 2}, train=dict(_TINY), run={"seed": 3})).fit(data.train)
    fits = [EnsembleRecommender(config=Config(model=model, train=dict(_TINY), run={"seed": 3 + BAG_SEED_STEP * b}))
            .fit(data.train) for b in range(2)]
    members = [m for fit in fits for m in fit.members_]
    assert len(bagged.members_) == 4
    for got, want in zip(bagged.members_, members):  # each bag's members, as fitted alone with its seed
        for name, value in want.net_.state_dict().items():
            assert torch.equal(got.net_.state_dict()[name], value), name
    assert bagged.blend_.weights == pytest.approx([w / 2 for fit in fits for w in fit.blend_.weights])
    assert bagged.blend_.intercept == pytest.approx(np.mean([fit.blend_.intercept for fit in fits]))
    assert bagged.refit_epochs_ == fits[0].refit_epochs_ + fits[1].refit_epochs_
    frame = data.test.frame
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy()
    u, i = bagged.users_.index(users, unknown="missing"), bagged.items_.index(items, unknown="missing")
    blends = [fit.blend_([m.predict_indices(u, i).values for m in fit.members_]) for fit in fits]  # unclipped
    expected = np.clip(np.mean(blends, axis=0), 1, 5)  # the fits averaged, then clipped to the scale
    np.testing.assert_allclose(bagged.predict_indices(u, i).values, expected, rtol=1e-5)
    bagged.save(tmp_path / "bagged")
    loaded = aerec.load(tmp_path / "bagged")
    np.testing.assert_array_equal(loaded.predict(users, items), bagged.predict(users, items))


def test_bags_need_members_and_a_whole_count() -> None:
    with pytest.raises(ConfigError, match="model.bags averages fits of an ensemble"):
        Recommender(bags=2)
    for bad in (0, 1.5, True):
        with pytest.raises(ConfigError, match="model.bags must be a whole number"):
            EnsembleRecommender(preset="accurate", bags=bad)
    assert EnsembleRecommender(preset="accurate", bags=3).resolved()[0].bags == 3


def test_the_ensemble_explains_by_the_items_group_and_its_shares_add_up() -> None:
    from aerec.testing import single_thread
    from tests.test_explain import LOVED, X, Y, assert_explained_by_own_group, planted_mixed

    with single_thread():
        model = EnsembleRecommender(config=Config(model={"kind": "autorec", "preset": "accurate", "hidden": [16], "l2": 1.0},
                                          train={"epochs": 6, "lbfgs_iterations": 10})).fit(planted_mixed())
    assert_explained_by_own_group(model.recommend("mixed", n=8, explain=True))
    given = {**dict.fromkeys(X[:4], 5.0), **dict.fromkeys(Y[:4], 5.0)}
    assert_explained_by_own_group(model.recommend_new(given, n=8, explain=True))
    # Exact: every member's fold-in is linear in the ratings and the blend is linear in the members.
    idx = model.items_.index(LOVED[:3])
    values = np.array([5.0, 4.0, 2.0])
    targets = np.arange(len(model.items_))
    shares = model._new_contributions(idx, values, targets)[2]  # (n_items, 3)
    bases = []
    for m in model.members_:
        fold_in = m.read_.fold_in
        bases.append(fold_in.means[fold_in.choice.prior[2]][targets])
    np.testing.assert_allclose(shares.sum(1) + model.blend_(bases), model.new_user_scores(idx, values), atol=1e-8)


def test_a_saved_ensemble_loads_as_one_from_every_entry_point(tmp_path) -> None:
    import aerec
    from aerec.testing import planted_ratings, single_thread

    with single_thread():
        model = _tiny_ensemble().fit(planted_ratings().train)
    model.save(tmp_path / "m")
    for load in (aerec.load, aerec.Estimator.load, Recommender.load, EnsembleRecommender.load):
        loaded = load(tmp_path / "m")
        assert type(loaded) is EnsembleRecommender, load
        assert np.allclose(loaded.predict(["u0"], ["i0"]), model.predict(["u0"], ["i0"]))
