"""Reconstruction losses over observed cells only (observed is not non-zero: docs/architecture.md).

Each loss is a pure function of ``(output, target, mask)`` with shapes ``(batch, n)``; the mask
is 1 at observed cells (a stored 0 included) and 0 at blanks, so blanks never pull the output.
Each returns the *sum* over the batch and the count it was taken over, so the trainer can
normalise per observed rating (``"observed"``) or per cell (``"all"``, the course's
``nn.MSELoss`` on vectors where blanks were set to zero).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["masked_mse", "masked_bce", "multinomial_nll", "LOSSES"]


def masked_mse(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of squared errors at observed cells, and the number of observed cells."""
    diff = (output - target) * mask
    return (diff * diff).sum(), mask.sum()


def masked_bce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary cross-entropy for like (1) / dislike (0) data at observed cells.

    Takes logits, not probabilities: ``binary_cross_entropy_with_logits`` is the stable form.
    """
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (loss * mask).sum(), mask.sum()


def multinomial_nll(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial log-likelihood of implicit feedback (Liang et al. 2018, Mult-VAE).

    ``-sum_i x_i log softmax(logits)_i`` per row; every cell counts (an unclicked item is
    evidence too), so the mask is unused. Returns the sum over rows and the number of rows.
    """
    del mask
    return -(F.log_softmax(logits, dim=-1) * target).sum(), torch.tensor(float(logits.shape[0]), device=logits.device)


LOSSES = {"mse": masked_mse, "bce": masked_bce, "multinomial": multinomial_nll}
