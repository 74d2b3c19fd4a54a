"""The L-BFGS epochs reuse the objective's last evaluation (aerec.training.lbfgs) without
changing a single bit of what they train."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from aerec.config import TrainConfig
from aerec.models.autoencoder import Autoencoder
from aerec.training import Trainer, lbfgs


def _rows() -> sp.csr_array:
    rng = np.random.default_rng(0)
    dense = rng.integers(1, 6, size=(60, 40)).astype(np.float32) * (rng.random((60, 40)) < 0.3)
    return sp.csr_array(dense)


def _train(monkeypatch, reuse: bool, **net_options):
    """Train a small network with L-BFGS; (its weights, the memo the trainer used)."""
    made = []

    class Recorded(lbfgs.LastEvaluation):
        def __init__(self, device):
            super().__init__(device)
            made.append(self)

    monkeypatch.setattr(lbfgs, "LastEvaluation", Recorded)
    monkeypatch.setattr("aerec.training.loop.LastEvaluation", Recorded)
    if not reuse:
        monkeypatch.setattr(Recorded, "_matches", lambda self, params: False)
    rows = _rows()
    torch.manual_seed(0)
    net = Autoencoder(rows.shape[1], (8,), **net_options)
    cfg = TrainConfig(optimizer="lbfgs", lr=1.0, batch_size=0, epochs=4, lbfgs_iterations=3, validation=0.0)
    Trainer(cfg, seed=1).fit(net, rows, l2=1.0)
    return {k: v.clone() for k, v in net.state_dict().items()}, made[0]


def test_each_epoch_after_the_first_starts_from_the_last_evaluation_with_the_same_weights(monkeypatch):
    reused, memo = _train(monkeypatch, reuse=True)
    fresh, memo_off = _train(monkeypatch, reuse=False)
    assert memo.hits == 3  # epochs 2, 3 and 4 each began where the previous line search ended
    assert memo_off.hits == 0
    assert reused.keys() == fresh.keys()
    for name in reused:
        assert torch.equal(reused[name], fresh[name]), name  # bit for bit


def test_an_objective_that_draws_random_numbers_is_always_evaluated_again(monkeypatch):
    _, memo = _train(monkeypatch, reuse=True, input_dropout=0.2)
    assert memo.hits == 0


def test_the_memo_answers_only_for_the_weights_it_saw():
    memo = lbfgs.LastEvaluation(torch.device("cpu"))
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    calls = []

    def evaluate():
        calls.append(1)
        w.grad = 2 * w.detach().clone()
        return (w.detach() ** 2).sum()

    stats: dict = {}
    assert float(memo.wrap(evaluate, [w], stats)()) == pytest.approx(5.0)  # evaluated and remembered
    assert float(memo.wrap(evaluate, [w], stats)()) == pytest.approx(5.0) and len(calls) == 1  # answered
    assert torch.equal(w.grad, torch.tensor([2.0, 4.0]))
    closure = memo.wrap(evaluate, [w], stats)
    closure()
    closure()  # only a step's first call may be answered: the line search moves the weights
    assert len(calls) == 2
    with torch.no_grad():
        w.add_(1.0)
    assert float(memo.wrap(evaluate, [w], stats)()) == pytest.approx(13.0) and len(calls) == 3
