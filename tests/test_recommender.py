"""Recommender behaviour not covered by the shared contract: batched top-N and the baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aerec.config import Config
from aerec.data.synthetic import synthetic_ratings
from aerec.recommender import Recommender


@pytest.fixture(scope="module")
def ratings():
    return synthetic_ratings(4000, seed=3)


@pytest.mark.parametrize("orientation", ["item", "user"])
def test_recommend_batch_matches_one_by_one_in_any_chunking(ratings, orientation):
    config = Config(model={"kind": "autorec", "hidden": [16], "orientation": orientation}, train={"epochs": 2})
    model = Recommender(config=config).fit(ratings)
    batch = model.recommend_batch(n=5, chunk=7)
    whole = model.recommend_batch(n=5, chunk=1000)
    assert batch[["user", "rank", "item"]].equals(whole[["user", "rank", "item"]])
    np.testing.assert_allclose(batch["score"], whole["score"], atol=1e-5)
    for user in model.users_.labels[:10]:
        one = model.recommend(user, n=5)
        mine = batch[batch.user == user]
        assert mine["rank"].tolist() == list(range(1, len(one) + 1))
        assert mine["item"].tolist() == one["item"].tolist()
        np.testing.assert_allclose(mine["score"].to_numpy(), one["score"].to_numpy(), atol=1e-5)
    rated = set(zip(ratings.frame.user, ratings.frame.item))
    assert not any((u, i) in rated for u, i in zip(batch.user, batch.item))


def test_baseline_network_starts_at_the_bias_model(ratings):
    # With model.baseline the output is mu + row bias + column bias + a small decoder term, so
    # an untrained network already predicts about what the bias model predicts.
    config = Config(model={"kind": "autorec", "hidden": [16]}, train={"epochs": 1, "lr": 1e-12, "optimizer": "sgd"})
    model = Recommender(config=config).fit(ratings)
    frame = ratings.frame.iloc[:500]
    u = model.users_.index(frame.user.to_numpy())
    i = model.items_.index(frame.item.to_numpy())
    net_pred = model.predict_indices(u, i).values
    bias_pred = np.clip(model.bias_.predict(u, i), 1, 5)
    assert np.sqrt(np.mean((net_pred - bias_pred) ** 2)) < 0.1
    assert bool(model.net_.use_baseline) and float(torch.as_tensor(model.net_.mu)) > 0


# ----------------------------------------------------------------------------- refit
def _autorec(train: dict | None = None, seed: int = 0) -> Recommender:
    return Recommender(config=Config(model={"kind": "autorec", "hidden": [16]},
                                     train={"epochs": 6, "patience": 2, **(train or {})}, run={"threads": 1, "seed": seed}))


def _no_clock(model):
    return [{k: v for k, v in vars(r).items() if k != "seconds"} for r in model.history_]


def test_a_fresh_refit_trains_a_new_network_on_every_rating_for_the_chosen_epochs(ratings):
    refitted = _autorec({"refit_start": "fresh"}).fit(ratings)
    assert refitted.resolved()[1].refit  # the autorec default
    best = refitted.train_result_.best_epoch
    assert refitted.refit_epochs_ == best and best >= 1
    # By hand: the same seed, no carve, that many epochs on all the ratings.
    by_hand = _autorec({"validation": 0.0, "epochs": best}).fit(ratings)
    for name, value in by_hand.net_.state_dict().items():
        torch.testing.assert_close(refitted.net_.state_dict()[name], value)
    selected = _autorec({"refit": False}).fit(ratings)  # the selection run's own best weights
    assert selected.refit_epochs_ is None
    assert _no_clock(selected) == _no_clock(refitted)  # the history is the selection run's
    assert not torch.equal(selected.net_.encoder[0].weight, refitted.net_.encoder[0].weight)


def test_the_default_refit_continues_the_selected_weights_for_a_third_of_the_epochs(ratings):
    from tests.conftest import continue_by_hand

    refitted = _autorec().fit(ratings)
    assert refitted.resolved()[1].refit_start == "selected"  # the autorec default
    best = refitted.train_result_.best_epoch
    assert best >= 1 and refitted.refit_epochs_ == -(-best // 3)
    selected = _autorec({"refit": False}).fit(ratings)
    assert _no_clock(selected) == _no_clock(refitted)  # the history is the selection run's
    # By hand: the selection run's best weights, over every rating's bias model, that many more
    # epochs on every rating (the carve back among them).
    net = continue_by_hand(selected, selected.train_csr_, selected.rows_, refitted.refit_epochs_)
    for name, value in net.state_dict().items():
        torch.testing.assert_close(refitted.net_.state_dict()[name], value)


def test_a_validation_set_given_by_the_caller_is_never_refitted_on(ratings):
    frame = ratings.frame
    from aerec.data.ratings import Ratings

    train = Ratings(frame.iloc[:3500].reset_index(drop=True), ratings.scale)
    val = Ratings(frame.iloc[3500:].reset_index(drop=True), ratings.scale)
    model = _autorec().fit(train, val)
    assert model.refit_epochs_ is None


def test_a_validation_matrix_with_its_own_numbering_is_read_by_label(ratings):
    from aerec.data.matrix import RatingMatrix
    from aerec.data.ratings import Ratings

    frame = ratings.frame
    train = Ratings(frame.iloc[:3500].reset_index(drop=True), ratings.scale)
    val = Ratings(frame.iloc[3500:].reset_index(drop=True), ratings.scale)
    own = RatingMatrix.from_ratings(val)  # numbers only the validation users and items
    shared = RatingMatrix.from_ratings(val, users=RatingMatrix.from_ratings(train).users,
                                       items=RatingMatrix.from_ratings(train).items, unknown="drop")
    assert own.users != shared.users
    by_ratings = _autorec().fit(train, val).history_
    for validation in (own, shared):
        history = _autorec().fit(train, validation).history_
        assert [r.val_rmse for r in history] == [r.val_rmse for r in by_ratings]


def test_refit_is_a_boolean_setting():
    from aerec.config import TrainConfig
    from aerec.errors import ConfigError

    with pytest.raises(ConfigError, match="train.refit"):
        TrainConfig(refit="yes")


def test_resuming_after_a_crash_in_the_refit_replays_it_to_the_same_weights(ratings, tmp_path):
    """A crash during the refit leaves the selection run's final checkpoint behind; resuming
    from it must not retrain the selection, and must end with the uninterrupted run's weights."""
    whole = _autorec().fit(ratings, checkpoint_dir=tmp_path)
    assert any(tmp_path.iterdir())  # the selection run's checkpoint
    resumed = _autorec().fit(ratings, checkpoint_dir=tmp_path, resume=True)
    assert resumed.refit_epochs_ == whole.refit_epochs_
    assert [r.epoch for r in resumed.history_] == [r.epoch for r in whole.history_]
    for name, value in whole.net_.state_dict().items():
        torch.testing.assert_close(resumed.net_.state_dict()[name], value, rtol=0, atol=0)


# ----------------------------------------------------------------------------- a new user's ratings
def test_a_new_users_ratings_are_numbers_on_the_scale_each_item_once(ratings):
    from aerec.errors import DataError

    model = _autorec({"epochs": 1}).fit(ratings)
    item = int(model.items_.labels[0])
    with pytest.raises(DataError, match="given twice"):
        model.recommend_new({item: 5.0, str(item): 1.0})  # one item, two ratings: which counts?
    for value in (True, "5", None):
        with pytest.raises(DataError, match="must be numbers"):
            model.recommend_new({item: value})
    with pytest.raises(DataError, match="mapping"):
        model.recommend_new([item])
    assert len(model.recommend_new({item: np.float32(4.0), str(int(model.items_.labels[1])): 2}, n=3)) == 3


def test_a_data_frame_is_taken_wherever_ratings_are(ratings):
    from aerec import ImplicitRecommender, evaluate_ratings
    from aerec.data.ratings import Ratings
    from aerec.errors import DataError

    frame = ratings.frame.reset_index(drop=True)
    by_frame = _autorec({"epochs": 2}).fit(frame)
    by_ratings = _autorec({"epochs": 2}).fit(Ratings.from_frame(frame))
    assert by_frame.scale_ == by_ratings.scale_
    torch.testing.assert_close(by_frame.net_.state_dict(), by_ratings.net_.state_dict())
    assert evaluate_ratings(by_frame, frame.iloc[:50]) == evaluate_ratings(by_frame, Ratings.from_frame(frame.iloc[:50]))
    for wrong in ([1, 2, 3], None):
        with pytest.raises(DataError, match="must be Ratings, a pandas DataFrame"):
            _autorec().fit(wrong)
    with pytest.raises(DataError, match="not numbers"):  # a table of labels is no users x items matrix
        _autorec().fit(frame.astype({"user": str}).to_numpy())
    with pytest.raises(DataError, match="missing column"):
        _autorec().fit(frame.drop(columns="rating"))

    events = frame[["user", "item"]]  # no rating column: event data for implicit models
    model = ImplicitRecommender("popularity").fit(events)
    assert model.threshold_ == 1.0 and model.seen_.nnz == len(events)


def test_a_misspelt_setting_fails_at_construction_and_n_must_be_a_whole_number(ratings):
    from aerec import ImplicitRecommender
    from aerec.errors import ConfigError, DataError

    with pytest.raises(ConfigError, match="hiddden"):
        Recommender("autorec", hiddden=[5])
    with pytest.raises(ConfigError, match="dropoutt"):
        ImplicitRecommender("multvae", dropoutt=0.1)
    with pytest.raises(ConfigError, match="'ease' is a top-N model.*ImplicitRecommender"):
        Recommender("ease")
    with pytest.raises(ConfigError, match="'autorec' is a rating model.*Recommender"):
        ImplicitRecommender("autorec")
    model = _autorec({"epochs": 1}).fit(ratings)
    user = model.users_.labels[0]
    for n in (True, 0, 2.0):
        with pytest.raises(DataError, match="positive whole number"):
            model.recommend(user, n=n)


def test_a_rating_model_refuses_events_to_train_or_validate_on(ratings):
    from aerec.data.ratings import Ratings
    from aerec.data.readers import IMPLICIT_SCALE
    from aerec.errors import DataError

    events = Ratings.from_frame(ratings.frame[["user", "item"]].assign(rating=1.0), implicit=True, scale=IMPLICIT_SCALE)
    with pytest.raises(DataError, match="the training data holds events.*ImplicitRecommender"):
        _autorec().fit(events)
    with pytest.raises(DataError, match="the validation data holds events"):
        _autorec().fit(ratings, events)
