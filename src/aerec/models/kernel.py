"""Kernelised (local) weights: every weight of a layer is gated by a learned kernel.

After GLocal-K (Han, Wang, Chen, Yang, Rao, Lin. "GLocal-K: Global and Local Kernels for
Recommender Systems", CIKM 2021), itself after Sparse FC (Muller, Martel, Indiveri. "Kernelized
Synaptic Weight Matrices", ICML 2018): a layer's weight ``W (out, in)`` is used as
``W * K``, where ``K[j, i] = max(0, 1 - ||v_j - u_i||^2)`` for learned points ``u_i`` of the
inputs and ``v_j`` of the units in a small space (``kernel_dim``, 5 in the paper). Units and
inputs whose points drift apart stop talking: the kernel learns a sparse, local connectivity.
The penalty is ``l2 * ||W||^2 + kernel_l2 * ||K||^2`` (the paper's lambda_2 and lambda_s).

The network is otherwise :class:`~aerec.models.autoencoder.Autoencoder` (item rows, sigmoid
units, identity output): every read of a layer's ``weight`` gets ``W * K``, so the dense and
sparse paths, the read-out of predictions and the new-user fold-in work unchanged. Only the
kernelised local network is here (the paper's pre-training stage): its global-kernel
fine-tuning, a 3x3 convolution over the rating matrix in user and item index order, made
validation RMSE worse on ML-100K (docs/benchmarks.md, "Accuracy").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aerec.models.autoencoder import Autoencoder, _SquaredNorm

__all__ = ["KernelAutoencoder", "KernelLinear"]


class KernelLinear(nn.Module):
    """``y = x @ (W * K).T + b`` with ``K (out, in)`` the kernel of learned points (see the module doc).

    ``raw_weight (out, in)``: Xavier-uniform, as the paper; ``u (in, d)``, ``v (out, d)``: N(0, 1e-3)
    so ``K`` starts at about 1 everywhere (a plain dense layer)."""

    def __init__(self, n_in: int, n_out: int, dim: int) -> None:
        super().__init__()
        self.in_features, self.out_features = n_in, n_out  # as nn.Linear's (the batch-format choice reads them)
        self.raw_weight = nn.Parameter(torch.empty(n_out, n_in))
        nn.init.xavier_uniform_(self.raw_weight)
        self.u = nn.Parameter(torch.randn(n_in, dim) * 1e-3)
        self.v = nn.Parameter(torch.randn(n_out, dim) * 1e-3)
        bound = 1 / math.sqrt(n_in)
        self.bias = nn.Parameter(torch.empty(n_out).uniform_(-bound, bound))

    def kernel(self) -> torch.Tensor:
        """``K (out, in)``: ``max(0, 1 - squared distance)`` of each unit's and input's points."""
        dist2 = torch.cdist(self.v, self.u).pow(2)  # (out, in)
        return torch.clamp(1 - dist2, min=0)

    @property
    def weight(self) -> torch.Tensor:
        return self.raw_weight * self.kernel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class KernelAutoencoder(Autoencoder):
    """An :class:`Autoencoder` whose layers are :class:`KernelLinear` (see the module doc)."""

    def __init__(self, n: int, encoder, decoder=None, *, kernel_dim: int = 5, kernel_l2: float = 0.0,
                 l2: float = 1.0, **options) -> None:
        super().__init__(n, encoder, decoder, **options)
        if self.tied:
            raise ValueError("kernelised weights need an untied decoder")
        self.encoder = nn.ModuleList(KernelLinear(m.in_features, m.out_features, kernel_dim) for m in self.encoder)
        self.decoder = nn.ModuleList(KernelLinear(m.in_features, m.out_features, kernel_dim) for m in self.decoder)
        # weight_norm2 is multiplied by model.l2 in the objective: the kernel's own penalty is
        # kernel_l2 * ||K||^2, so it enters here divided by l2.
        self.kernel_share = kernel_l2 / l2 if l2 > 0 else 0.0

    def weight_norm2(self) -> torch.Tensor:
        layers = [*self.encoder, *self.decoder]
        total = sum(_SquaredNorm.apply(layer.raw_weight) for layer in layers)
        if self.kernel_share:
            total = total + self.kernel_share * sum(layer.kernel().pow(2).sum() for layer in layers)
        return total
