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
