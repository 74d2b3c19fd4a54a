"""EASE^R (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019) in closed form.

``B = I - P diag(1 / diag(P))`` with ``P = (X'X + l2 I)^-1``: items x items matrices, so this
module also estimates the memory a fit needs and refuses what cannot fit. :class:`EASESolver`
scores every candidate lambda from one eigendecomposition. The family's record (defaults, the
lambda grid) is in :mod:`aerec.models.implicit_families`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from aerec.errors import ConfigError

__all__ = [
    "EASE_DTYPE",
    "MAX_EASE_ITEMS",
    "EASESolver",
    "check_ease_size",
    "ease_final_weights",
    "ease_memory_bytes",
    "ease_weights",
    "gram_matrix",
]

MAX_EASE_ITEMS = 40_000  # past this an items x items matrix (6.4 GB in float32) is refused outright
# EASE's matrices are float32: on ML-100K u1 its test NDCG@100 differs from float64's by about
# 1e-6 and its Recall@20 not at all (docs/benchmarks.md, "Command speed"), at half the memory.
EASE_DTYPE = torch.float32


class EASESolver:
    """``P(l2) = (X'X + l2 I)^-1`` for every ridge weight ``l2`` from one eigendecomposition.

    ``X`` is the binarised users x items CSR. With at least as many users as items,
    ``X'X = V diag(s) V'`` (items x items) and ``P = V diag(1 / (s + l2)) V'``. With fewer users
    than items the users x users ``XX'`` has the same nonzero spectrum and is far smaller:
    ``XX' = W diag(s) W'``, ``V = X'W diag(s)^-1/2`` (items x rank), and by Woodbury
    ``P = (I - V diag(s / (s + l2)) V') / l2``. Either way ``P = c I + V diag(d) V'``, so a new
    ``l2`` costs a few vector operations: :meth:`scores` rank validation users without forming
    the items x items ``B``, and :meth:`weights` forms it once for the chosen ``l2``.
    """

    def __init__(self, csr, dtype: torch.dtype | None = None) -> None:
        dtype = dtype or EASE_DTYPE  # looked up at call time: benchmarks/cli_speed.py compares float64
        x = sp.csr_array(csr, dtype=np.float64)  # co-counts are exact; eigh runs in ``dtype``
        n_users, n_items = x.shape
        self.dual = n_users < n_items
        if not self.dual:
            s, v = torch.linalg.eigh(torch.from_numpy((x.T @ x).toarray()).to(dtype))  # (items,), (items, items)
        else:
            s, w = torch.linalg.eigh(torch.from_numpy((x @ x.T).toarray()).to(dtype))  # (users,), (users, users)
            # Users with nothing, or repeating others, add zero eigenvalues: no direction of X'X.
            keep = s > s.abs().max().clamp_min(1.0) * n_users * torch.finfo(dtype).eps
            s, w = s[keep], w[:, keep]
            v = torch.from_numpy(np.asarray(x.T @ (w / s.sqrt()).double().numpy())).to(dtype)  # (items, rank)
        self.s, self.v, self.n_items = s.clamp_min(0.0), v, n_items

    def _coefficients(self, l2: float) -> tuple[float, torch.Tensor]:
        """``(c, d)`` of ``P = c I + V diag(d) V'``."""
        if self.dual:
            return 1.0 / l2, -self.s / (l2 * (self.s + l2))
        return 0.0, 1.0 / (self.s + l2)

    def _diag_p(self, c: float, d: torch.Tensor) -> torch.Tensor:
        return c + (self.v * self.v) @ d  # (items,)

    @torch.no_grad()
    def scores(self, x: torch.Tensor, l2: float) -> torch.Tensor:
        """``x B`` for users' rows ``x (n, items)``: ``x - (x P) / diag(P)`` (B's zero diagonal is implied)."""
        c, d = self._coefficients(l2)
        xd = x.to(self.v.dtype)
        xp = c * xd + ((xd @ self.v) * d) @ self.v.T  # (n, items)
        return (xd - xp / self._diag_p(c, d)[None, :]).float()

    @torch.no_grad()
    def weights(self, l2: float) -> torch.Tensor:
        """``B = I - P diag(1 / diag(P))`` ``(items, items)`` float32, formed in place."""
        c, d = self._coefficients(l2)
        p = (self.v * d) @ self.v.T  # (items, items)
        p.diagonal().add_(c)
        b = p.div_(-p.diagonal().clone()[None, :])  # column j divided by -P_jj
        b.diagonal().zero_()
        return b.float()


@torch.no_grad()
def ease_weights(gram: torch.Tensor, l2: float) -> torch.Tensor:
    """EASE's item-item weights ``B`` ``(n_items, n_items)`` from the Gram matrix ``X'X``.

    ``P = (X'X + l2 I)^-1``; ``B = I - P diag(1 / diag(P))``, which makes ``diag(B) = 0`` (an
    item may not predict itself). One Cholesky factorisation in the Gram matrix's dtype
    (``X'X + l2 I`` is symmetric positive definite); returned as float32.
    """
    g = gram.clone()
    g.diagonal().add_(l2)
    p = torch.cholesky_inverse(torch.linalg.cholesky(g))
    b = p.div_(-p.diagonal().clone()[None, :])  # column j divided by -P_jj
    b.diagonal().zero_()
    return b.float()


def ease_final_weights(csr, l2: float, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``B`` for one ``l2`` on all of ``csr``: one Cholesky of the items x items Gram, or with
    fewer users than items, :class:`EASESolver`'s users x users eigendecomposition."""
    dtype = dtype or EASE_DTYPE
    if csr.shape[0] < csr.shape[1]:
        return EASESolver(csr, dtype).weights(l2)
    return ease_weights(gram_matrix(csr).to(dtype), l2)


def ease_memory_bytes(n_users: int, n_items: int, dtype: torch.dtype = EASE_DTYPE) -> int:
    """About the most memory an EASE fit holds at once: items x items matrices (the Gram matrix,
    its eigenvectors and LAPACK's workspace, then ``P`` and ``B``), or with fewer users than
    items, ``P``, ``B`` and the items x users eigenvectors."""
    size = torch.finfo(dtype).bits // 8
    if n_users < n_items:
        return size * (2 * n_items**2 + 2 * n_items * n_users + 3 * n_users**2)
    return size * 4 * n_items**2


def check_ease_size(n_items: int, n_users: int | None = None) -> int:
    """The memory an EASE fit needs (bytes); refuses, with the numbers, what cannot fit."""
    need = ease_memory_bytes(n_items if n_users is None else n_users, n_items)
    if n_items > MAX_EASE_ITEMS:
        raise ConfigError(
            f"EASE keeps items x items matrices: {n_items:,} items need about {need / 2**30:,.1f} GiB; filter rare "
            f"items first (at most {MAX_EASE_ITEMS:,}) or choose multvae"
        )
    from aerec import _memory

    have = _memory.available_memory()
    if have is not None and need > have:
        raise ConfigError(
            f"EASE on {n_items:,} items needs about {need / 2**30:,.1f} GiB of memory (items x items float32 "
            f"matrices) but {have / 2**30:,.1f} GiB is available; filter rare items first (memory grows with "
            f"items squared) or choose multvae"
        )
    return need


def gram_matrix(csr) -> torch.Tensor:
    """``X'X`` ``(n_items, n_items)`` float64 of a binarised users x items CSR."""
    x = csr.astype(np.float64)
    return torch.from_numpy((x.T @ x).toarray())
