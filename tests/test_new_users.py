"""Brand-new users and the ranking of rating models: the fold-in's algebra, what validation
chooses, the properties a user relies on (better with each rating, never worse than the damped
bias fold-in, no clipping ties at the head of a list) and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aerec.config import Config
from aerec.data.scale import RatingScale
from aerec.errors import ConfigError, DataError
from aerec.foldin import BUCKETS, FoldIn, FoldInChoice, Link, bucket_of, calibrate
from aerec.recommender import Recommender
from aerec.relevance import Relevance


# ----------------------------------------------------------------------------- the algebra
def _fold_in(rng, n_items=30, d=4, n_users=200, choice=None, reg_user=5.0):
    features = rng.normal(size=(n_items, d))
    theta = rng.normal(size=(n_users, d))
    bias_mean = 3.5 + rng.normal(scale=0.5, size=n_items)
    items = rng.integers(0, n_items, 2000)
    ratings = np.clip(bias_mean[items] + rng.normal(size=2000), 1, 5)
    return FoldIn(features, np.zeros(n_items), theta, Link("identity"), bias_mean, reg_user, (items, ratings), choice)


def test_the_bias_prior_without_the_network_is_the_damped_bias_fold_in():
    rng = np.random.default_rng(0)
    choice = FoldInChoice(["bias"] * len(BUCKETS), [0.0] * len(BUCKETS), "test")
    fold = _fold_in(rng, choice=choice, reg_user=5.0)
    base = fold.means["bias"]
    for k in (0, 1, 3, 12):
        idx = rng.choice(fold.n_items, k, replace=False)
        values = rng.uniform(1, 5, k)
        user = (values - base[idx]).sum() / (k + 5.0)  # mean residual shrunk by reg_user
        np.testing.assert_allclose(fold.scores(idx, values), base + user, atol=1e-10)


def test_one_rating_moves_the_scores_less_than_many():
    rng = np.random.default_rng(1)
    fold = _fold_in(rng)
    mean = fold.scores(np.array([], dtype=np.int64), np.array([]))
    shift = []
    for k in (1, 5, 20):
        idx = np.arange(k)
        shift.append(np.abs(fold.scores(idx, fold.means["model"][idx] + 1.0) - mean).mean())
    assert shift[0] < shift[1] < shift[2]  # the shrinkage falls as evidence grows


def test_buckets_of_k():
    assert [bucket_of(k) for k in (0, 1, 2, 3, 4, 7, 8, 15, 16, 500)] == [0, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_links_invert_inside_their_range():
    z = np.linspace(-2, 2, 9)
    for name in ("identity", "sigmoid", "tanh", "selu"):
        link = Link(name)
        np.testing.assert_allclose(link.inverse(link(z)), z, atol=1e-9, err_msg=name)
    assert np.isfinite(Link("sigmoid").inverse(np.array([0.0, 1.0]))).all()  # clipped, not infinite


def test_calibration_falls_back_to_the_bias_fold_in_when_the_network_knows_nothing():
    # Ratings that are item means plus a user offset: the network's features are noise, so
    # the bias prior with alpha 0 must win wherever there are ratings to fold in.
    rng = np.random.default_rng(2)
    n_items, n_users = 60, 300
    bias_mean = 3 + rng.normal(scale=0.6, size=n_items)
    offsets = rng.normal(scale=0.7, size=n_users)
    truth = np.clip(bias_mean[None, :] + offsets[:, None] + rng.normal(scale=0.3, size=(n_users, n_items)), 1, 5)
    fold = FoldIn(rng.normal(size=(n_items, 6)), np.zeros(n_items), rng.normal(size=(n_users, 6)), Link("identity"),
                  bias_mean, 2.0, (np.tile(np.arange(n_items), n_users), truth.ravel()))
    given, given_v, target, target_v = [], [], [], []
    for u in range(n_users):
        order = rng.permutation(n_items)
        given.append(order[:30]), given_v.append(truth[u, order[:30]])
        target.append(order[30:]), target_v.append(truth[u, order[30:]])
    choice = calibrate(fold, given, given_v, target, target_v, 1.0, 5.0, np.random.default_rng(0))
    assert choice.chosen_on == "validation"
    assert choice.prior[1:] == ["bias"] * (len(BUCKETS) - 1) and choice.alpha[1:] == [0.0] * (len(BUCKETS) - 1)


def test_fold_in_choice_round_trips_and_refuses_nonsense():
    choice = FoldInChoice(["bias", "model", "model", "model", "bias", "model"], [0, 0.5, 1, 1, 0, 2], "validation")
    assert FoldInChoice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice
    assert FoldInChoice.from_dict(None) == FoldInChoice()
    with pytest.raises(ValueError):
        FoldInChoice.from_dict({"prior": ["bias"] * 6, "alpha": [-1.0] * 6})
    with pytest.raises(ValueError):
        FoldInChoice.from_dict({"prior": ["magic"] * 6, "alpha": [1.0] * 6})


# ----------------------------------------------------------------------------- relevance
def test_relevance_recovers_a_logistic_calibration():
    rng = np.random.default_rng(3)
    pred = rng.uniform(1, 5, 20_000)
    liked = rng.random(20_000) < 1 / (1 + np.exp(-2.0 * (pred - 3.7)))
    rel = Relevance.fit(pred, np.where(liked, 5.0, 2.0), 4.0)
    assert rel.slope == pytest.approx(2.0, rel=0.1) and rel.center == pytest.approx(3.7, abs=0.05)
    assert rel.fitted_on == "validation"
    few = Relevance.fit(pred[:10], np.where(liked[:10], 5.0, 2.0), 4.0)
    assert few.fitted_on == "default" and few.center == 4.0
    assert Relevance.from_dict(rel.to_dict()) == rel
    with pytest.raises(ValueError):
        Relevance.from_dict({**rel.to_dict(), "slope": -1.0})



@pytest.mark.parametrize("seed, n, noise", [(0, 4_000, 0.9), (1, 300, 2.0), (2, 50_000, 0.5)])
def test_relevance_is_the_maximum_likelihood_fit(seed, n, noise):
    # The calibration's own Newton solver against a general optimiser on the same likelihood.
    from scipy.optimize import minimize
    from scipy.special import log_expit

    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, n).astype(float)
    pred = 3.5 + 0.6 * (truth - 3.5) + rng.normal(0, noise, n)
    liked = truth >= 4

    def nll(w):  # w = (slope, center)
        z = w[0] * (pred - w[1])
        return -np.mean(np.where(liked, log_expit(z), log_expit(-z)))

    best = minimize(nll, [1.0, 3.5], method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-12}).x
    rel = Relevance.fit(pred, truth, 4.0)
    assert (rel.slope, rel.center) == pytest.approx(tuple(best), rel=1e-4)
    assert nll([rel.slope, rel.center]) <= nll(best) + 1e-9

    separated = Relevance.fit(truth + rng.normal(0, 0.01, n), truth, 4.0)  # liked iff above 3.5
    assert np.isfinite(separated.slope) and separated.slope > 1 and 3 < separated.center < 4

def test_liked_level_of_common_scales():
    assert RatingScale(1, 5, 1).liked_from() == 4.0
    assert RatingScale(0.5, 5, 0.5).liked_from() == 3.5
    assert RatingScale(1, 10, 1).liked_from() == 7.0


# ----------------------------------------------------------------------------- planted users
def _planted(n_users: int, n_items: int, seed: int) -> pd.DataFrame:
    """Two user groups x two item groups with opposite tastes, every cell rated."""
    rng = np.random.default_rng(seed)
    loves = (np.arange(n_users)[:, None] < n_users // 2) == (np.arange(n_items)[None, :] < n_items // 2)
    values = np.where(loves, np.where(rng.random(loves.shape) < 0.7, 5.0, 4.0),
                      np.where(rng.random(loves.shape) < 0.7, 1.0, 2.0))
    u, i = np.indices(loves.shape)
    return pd.DataFrame({"user": u.ravel().astype(str), "item": i.ravel().astype(str), "rating": values.ravel()})


def _new_user_curve(model, frame, users, ks):
    """RMSE over the held-out users' ratings past the 10th, for each k they give (in a fixed
    random order), with the model's fold-in and with the damped bias fold-in."""
    b = model.bias_
    base = b.mu_ + b.item_bias_.astype(np.float64)
    rng = np.random.default_rng(0)
    se, se_bias = np.zeros(len(ks)), np.zeros(len(ks))
    n = 0
    for user in users:
        part = frame[frame.user == user].iloc[rng.permutation(int((frame.user == user).sum()))]
        idx = model.items_.index(part["item"].to_numpy())
        vals = part["rating"].to_numpy()
        rest, truth = idx[max(ks):], vals[max(ks):]
        for j, k in enumerate(ks):
            pred = np.clip(model.new_user_scores(idx[:k], vals[:k])[rest], 1, 5)
            shift = (vals[:k] - base[idx[:k]]).sum() / (k + b.reg_user) if k else 0.0
            floor = np.clip(base[rest] + shift, 1, 5)
            se[j] += ((pred - truth) ** 2).sum()
            se_bias[j] += ((floor - truth) ** 2).sum()
        n += len(truth)
    return np.sqrt(se / n), np.sqrt(se_bias / n)


@pytest.fixture(scope="module")
def planted_frame():
    return _planted(160, 40, seed=4)


@pytest.mark.parametrize("orientation", ["item", "user"])
def test_a_new_user_gets_better_with_each_rating_and_never_worse_than_the_bias_fold_in(planted_frame, orientation):
    new = [str(u) for u in (*range(0, 10), *range(80, 90))]  # ten of each group, never trained on
    train = planted_frame[~planted_frame.user.isin(new)]
    config = Config(model={"kind": "autorec", "hidden": [8], "orientation": orientation},
                    train={"epochs": 40, "patience": 5}, run={"threads": 1, "seed": 0})
    model = Recommender(config=config).fit(train.reset_index(drop=True))
    assert model.fold_in_choice_.chosen_on == "validation"
    ks = (0, 1, 3, 5, 10)
    rmse, floor = _new_user_curve(model, planted_frame, new, ks)
    assert (np.diff(rmse) <= 0.003).all(), f"new-user RMSE by k {ks}: {rmse}"
    assert (rmse <= floor + 0.003).all(), f"fold-in {rmse} against the bias fold-in {floor}"
    assert rmse[ks.index(10)] <= 0.97 * rmse[0]
    # One rating of a group's item says which group: the list must come from that group.
    liked = model.recommend_new({"0": 5.0}, n=5)["item"].astype(int)
    assert (liked < 20).all(), liked.tolist()


# ----------------------------------------------------------------------------- lists without ties
@pytest.fixture(scope="module")
def small_model():
    from aerec.data.synthetic import synthetic_ratings

    config = Config(model={"kind": "autorec", "hidden": [16]}, train={"epochs": 3}, run={"threads": 1})
    return Recommender(config=config).fit(synthetic_ratings(4000, seed=3))


def test_predictions_above_the_scale_do_not_tie_and_support_breaks_them(small_model):
    n_items = len(small_model.items_)
    predictions = np.full(n_items, small_model.scale_.high + 1.0)  # every clipped prediction would be 5
    predictions[:5] += np.linspace(0.5, 0.1, 5)  # a little above the others, unclipped
    top, relevance, clipped = small_model.rank_items(predictions.copy(), np.zeros(n_items, dtype=bool), 20)
    assert (clipped == small_model.scale_.high).all()  # the clipped values tie...
    assert (np.diff(relevance) <= 0).all()
    counts = small_model.item_counts_
    rest = top[~np.isin(top, np.arange(5))]
    # ...but the order among equal predictions follows how many people rated each item.
    assert (np.diff(counts[rest]) <= 0).all()
    assert set(np.flatnonzero(counts == 0)).isdisjoint(top)  # items nobody rated never rank


def test_a_list_head_is_not_decided_by_clipping(small_model):
    user = small_model.users_.labels[0]
    recs = small_model.recommend(user, n=10)
    assert list(recs.columns[:3]) == ["item", "score", "prediction"]
    assert recs["score"].is_unique, "relevance ties at the head of the list"
    assert recs["score"].is_monotonic_decreasing


# ----------------------------------------------------------------------------- bad input
def test_recommend_new_bad_input(small_model):
    known = str(small_model.items_.labels[0])
    with pytest.raises(DataError, match="no-such"):
        small_model.recommend_new({known: 5.0, "no-such": 4.0})
    with pytest.warns(UserWarning, match="no-such"):
        recs = small_model.recommend_new({known: 5.0, "no-such": 4.0}, n=3, unknown="warn")
    assert len(recs) == 3 and known not in set(recs["item"].astype(str))
    for value in (float("nan"), 9.0, 0.0):
        with pytest.raises(DataError):
            small_model.recommend_new({known: value})
    with pytest.raises(ConfigError, match="unknown must be"):
        small_model.recommend_new({known: 5.0}, unknown="ignore")
    cold = small_model.recommend_new({}, n=5)
    expected = small_model.rank_items(small_model.new_user_scores(np.array([], dtype=np.int64), np.array([])),
                                      np.zeros(len(small_model.items_), dtype=bool), 5)[0]
    assert cold["item"].tolist() == small_model.items_.label(expected).tolist()


def test_a_model_saved_before_the_fold_in_was_calibrated_still_loads(small_model, tmp_path):
    path = small_model.save(tmp_path / "model")
    meta_file = path / "model.json"
    meta = json.loads(meta_file.read_text())
    assert "fold_in" in meta and "relevance" in meta
    del meta["fold_in"], meta["relevance"]
    meta_file.write_text(json.dumps(meta))
    old = Recommender.load(path)  # the checksum covers the weights, not model.json
    assert old.fold_in_choice_ == FoldInChoice()
    assert old.relevance_.fitted_on in ("training", "default")
    assert len(old.recommend_new({str(small_model.items_.labels[0]): 5.0}, n=4)) == 4
