"""A network too large for the machine's memory is refused before training, with the numbers."""

from __future__ import annotations

import pytest

import aerec
from aerec import _memory
from aerec.data import synthetic
from aerec.data.matrix import RatingMatrix
from aerec.errors import TrainingError
from aerec.training import Trainer

RATINGS = synthetic.synthetic_ratings(3000, n_users=300, n_items=500, seed=0)


def test_the_estimate_counts_the_weights_times_what_the_optimiser_keeps():
    model = aerec.Recommender(threads=1)
    params, train, _ = model.resolved()
    weights = 2 * 500 * 300 + 500 + 300  # I-AutoRec: users in and out, 500 units, biases
    need = model.check_memory(params, train, RatingMatrix.from_ratings(RATINGS))
    assert need == weights * 4 * 50  # L-BFGS: 40 copies for its 20 stored pairs, 10 for the rest
    adam = aerec.Recommender(threads=1, optimizer="adam", batch_size=64)
    assert adam.check_memory(*adam.resolved()[:2], RatingMatrix.from_ratings(RATINGS)) == weights * 4 * 5


@pytest.mark.parametrize("make", [lambda: aerec.Recommender(threads=1),
                                  lambda: aerec.EnsembleRecommender(preset="blend", threads=1)])
def test_a_fit_that_cannot_fit_is_refused_before_any_training(monkeypatch, make):
    monkeypatch.setattr(_memory, "available_memory", lambda: 10 * 2**20)  # 10 MiB free
    trained = []
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: trained.append(1))
    with pytest.raises(TrainingError) as info:
        make().fit(RATINGS)
    message = str(info.value)
    assert "300 users" in message and "57 MiB" in message and "10 MiB" in message
    assert "does not fit in memory" in message and "smaller model.hidden" in message  # as a network too large to build
    assert "train.optimizer=adam" in message  # the ways out
    assert not trained  # an ensemble checks every member before the first trains


def test_without_a_memory_figure_nothing_is_refused(monkeypatch):
    monkeypatch.setattr(_memory, "available_memory", lambda: None)  # not Linux
    model = aerec.Recommender(threads=1)
    assert model.check_memory(*model.resolved()[:2], RatingMatrix.from_ratings(RATINGS)) > 0
