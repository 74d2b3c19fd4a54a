"""Masked losses on tiny hand-worked tensors: a blank never contributes, a stored 0 does."""

from __future__ import annotations

import math

import pytest
import torch

from aerec.losses import LOSSES, masked_bce, masked_mse, multinomial_nll


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_masked_mse_by_hand():
    # Cell 0: exact. Cell 1: a stored 0 (a real rating) predicted as 2 -> error 4.
    # Cell 2: a blank whose "target" 5 is far from 3: it must not count.
    out, target, mask = t([[1.0, 2.0, 3.0]]), t([[1.0, 0.0, 5.0]]), t([[1, 1, 0]])
    sse, n = masked_mse(out, target, mask)
    assert float(sse) == 4.0 and float(n) == 2.0


def test_masked_mse_sums_over_rows():
    out = t([[1.0, 2.0], [0.5, 4.0]])
    target = t([[2.0, 9.0], [0.0, 4.0]])
    mask = t([[1, 0], [1, 1]])
    sse, n = masked_mse(out, target, mask)
    assert float(sse) == pytest.approx(1.0 + 0.25 + 0.0) and float(n) == 3.0


def test_blanks_get_no_gradient_and_stored_zeros_do():
    for loss in (masked_mse, masked_bce):
        out = t([[0.3, 0.7, 0.9]]).requires_grad_()
        err, _ = loss(out, t([[1.0, 0.0, 1.0]]), t([[1, 1, 0]]))
        err.backward()
        assert out.grad[0, 2] == 0.0, loss.__name__  # the blank
        assert out.grad[0, 1] != 0.0, loss.__name__  # the stored 0


def test_masked_bce_by_hand():
    # Logit 0 for a like: -log(sigmoid(0)) = log 2. Logit 2 for a dislike (a stored 0):
    # -log(1 - sigmoid(2)) = log(1 + e^2). The blank (logit -1) is ignored.
    logits, target, mask = t([[0.0, 2.0, -1.0]]), t([[1.0, 0.0, 1.0]]), t([[1, 1, 0]])
    err, n = masked_bce(logits, target, mask)
    assert float(err) == pytest.approx(math.log(2) + math.log(1 + math.e**2), rel=1e-6)
    assert float(n) == 2.0


def test_masked_bce_is_stable_for_extreme_logits():
    err, _ = masked_bce(t([[100.0, -100.0]]), t([[1.0, 0.0]]), t([[1, 1]]))
    assert float(err) == pytest.approx(0.0, abs=1e-6)
    err, _ = masked_bce(t([[-100.0]]), t([[1.0]]), t([[1]]))
    assert float(err) == pytest.approx(100.0, rel=1e-6)


def test_multinomial_nll_by_hand():
    # softmax([0, 0, ln 2]) = [1/4, 1/4, 1/2]; clicks on items 0 and 2: -(log 1/4 + log 1/2) = log 8.
    logits, target = t([[0.0, 0.0, math.log(2)]]), t([[1.0, 0.0, 1.0]])
    nll, n = multinomial_nll(logits, target)
    assert float(nll) == pytest.approx(math.log(8), rel=1e-6) and float(n) == 1.0


def test_multinomial_nll_sums_rows_and_ignores_the_mask():
    logits = t([[0.0, 0.0, math.log(2)], [0.0, 0.0, 0.0]])
    target = t([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]])  # counts weigh the log-probability
    expected = math.log(8) + 2 * math.log(3)
    nll, n = multinomial_nll(logits, target)
    assert float(nll) == pytest.approx(expected, rel=1e-6) and float(n) == 2.0
    masked, _ = multinomial_nll(logits, target, t([[0, 0, 0], [0, 0, 0]]))
    assert float(masked) == pytest.approx(expected, rel=1e-6)  # every cell is evidence


def test_the_registry_names_each_loss():
    assert LOSSES == {"mse": masked_mse, "bce": masked_bce, "multinomial": multinomial_nll}
