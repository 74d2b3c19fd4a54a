"""How rows reach the network: dense ``(batch, n)`` values and mask, or a sparse batch.

A :class:`~aerec.data.batches.SparseBatch` has its outputs computed at the observed cells only
(``Autoencoder.forward_observed``). :func:`choose_batch_format` picks one of the two for a fit;
:class:`DenseCache` and :class:`SparseCache` hold the whole matrix in that form, chunk by chunk,
for the full-batch (L-BFGS) objective. Nothing of size users x items is made on either path: at
most one batch, or one chunk of L-BFGS's pass.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from aerec.config import TrainConfig
from aerec.data.batches import dense_rows, sparse_batch
from aerec.errors import TrainingError

__all__ = ["choose_batch_format", "rows_batch", "DenseCache", "SparseCache"]

# Rows per chunk when a full-batch (L-BFGS) objective is accumulated: bounds memory to a chunk.
FULL_BATCH_CELLS = 4_000_000
# The sparse path (choose_batch_format): below this density of observed cells it is the faster
# one on CPU (measured: docs/benchmarks.md, "Performance"); above it the dense products win ...
SPARSE_BELOW_DENSITY = 0.15
# ... once a batch's first layer is big enough (batch rows x columns x first hidden size, in
# multiply-adds): below it the sparse path's fixed cost per batch (a few more, smaller kernels)
# outweighs the products it saves (measured: an n-20-10-20-n network on ML-100K user rows in
# batches of 32, 1 M multiply-adds, is 1.8x slower on the sparse path; 500 units in batches of
# 64 item rows, 30 M, is 1.2x faster).
SPARSE_MIN_WORK = 1 << 24  # 16.8 M
# ... and whatever the density, a dense batch (values + mask) larger than this is not made.
DENSE_BATCH_CELLS = 1 << 25  # 32 M cells: 2 x 128 MB in float32
# Observed cells per chunk of the sparse full-batch (L-BFGS) cache.
SPARSE_CHUNK_CELLS = 2_000_000


def choose_batch_format(
    net: nn.Module,
    rows: sp.csr_array,
    *,
    config: TrainConfig,
    loss: str,
    device: torch.device | str = "cpu",
    distributed: bool = False,
) -> str:
    """How the trainer hands rows to ``net``: ``"dense"`` batches or ``"sparse"`` ones.

    ``train.batch_format`` decides when it is ``dense`` or ``sparse``; ``auto`` takes the sparse
    path when the network has one (``forward_observed``: the explicit-rating autoencoders),
    the loss reads observed cells only (mse, bce; not the implicit models' own objectives, nor
    dense re-feeding, whose input is the whole output), on CPU, in a single process, and
    either one dense batch would pass ``DENSE_BATCH_CELLS``, or the matrix is sparser than
    ``SPARSE_BELOW_DENSITY`` (15 %) and a batch's first layer is worth it (``SPARSE_MIN_WORK``
    multiply-adds, batch rows x columns x first hidden size). Both paths compute the same objective and gradients (up to float
    rounding; tests/test_sparse_path.py); the crossover was measured: docs/benchmarks.md.
    """
    choice = getattr(config, "batch_format", "auto")
    if choice == "dense":
        return "dense"
    why_not = None
    if not hasattr(net, "forward_observed"):
        why_not = "this network has no sparse path (only the explicit-rating autoencoders do)"
    elif hasattr(net, "training_loss") or loss not in ("mse", "bce"):
        why_not = "its objective reads every cell, not only the observed ones"
    elif config.dense_refeeding:
        why_not = "dense re-feeding trains on the whole output"
    if choice == "sparse":
        if why_not is not None:
            raise TrainingError(f"train.batch_format = 'sparse' cannot be used here: {why_not}; "
                                "use 'auto' or 'dense'")
        return "sparse"
    if why_not is not None or torch.device(device).type != "cpu" or distributed:
        return "dense"
    n_rows, n_cols = rows.shape
    density = rows.nnz / max(n_rows * n_cols, 1)
    batch_rows = min(config.batch_size or n_rows, n_rows)
    if batch_rows * n_cols > DENSE_BATCH_CELLS:
        return "sparse"
    first_hidden = net.encoder[0].out_features
    worth_it = batch_rows * n_cols * first_hidden >= SPARSE_MIN_WORK
    return "sparse" if density < SPARSE_BELOW_DENSITY and worth_it else "dense"


def rows_batch(rows: sp.csr_array, index: np.ndarray, batch_format: str, device: torch.device):
    """Rows ``index`` in ``batch_format``: ``(SparseBatch, None)`` or dense ``(x, mask)``, each ``(len(index), n)``."""
    if batch_format == "sparse":
        return sparse_batch(rows, index, device=device), None
    return dense_rows(rows, index, device=device)


class DenseCache:
    """The whole matrix as dense row chunks for full-batch optimisation.

    Chunks are built once and kept when they fit in ``FULL_BATCH_CELLS * 16`` cells (about
    256 MB); larger matrices are rebuilt chunk by chunk on each pass instead.
    """

    def __init__(self, rows: sp.csr_array, device: torch.device, subset: np.ndarray | None = None) -> None:
        self.rows, self.device = rows, device
        self.n_rows = rows.shape[0]  # of the whole matrix, also when this process holds a subset
        mine = np.arange(self.n_rows) if subset is None else np.asarray(subset, dtype=np.int64)
        per_chunk = max(1, FULL_BATCH_CELLS // max(rows.shape[1], 1))
        self.chunks = [mine[s : s + per_chunk] for s in range(0, len(mine), per_chunk)]
        self.keep = len(mine) * rows.shape[1] <= FULL_BATCH_CELLS * 16
        self._built = [dense_rows(rows, c, device=device) for c in self.chunks] if self.keep else None

    def __iter__(self):
        if self._built is not None:
            yield from self._built
        else:
            for c in self.chunks:
                yield dense_rows(self.rows, c, device=self.device)


class SparseCache:
    """The whole matrix as :class:`SparseBatch` chunks for full-batch optimisation (the sparse path).

    Always kept: it costs about 36 bytes an observed cell (the matrix's 20, and 16 for the pattern
    read by column that the sparse products' backward uses on every pass). Yields
    ``(batch, None)`` pairs, as :class:`DenseCache` yields ``(x, mask)``.
    """

    def __init__(self, rows: sp.csr_array, device: torch.device, subset: np.ndarray | None = None) -> None:
        self.n_rows = rows.shape[0]  # of the whole matrix, also when this process holds a subset
        mine = np.arange(self.n_rows) if subset is None else np.asarray(subset, dtype=np.int64)
        ends = np.cumsum(rows.indptr[mine + 1] - rows.indptr[mine])  # observed cells up to each row
        cuts = np.searchsorted(ends, np.arange(SPARSE_CHUNK_CELLS, int(ends[-1]) if len(ends) else 0, SPARSE_CHUNK_CELLS))
        self.chunks = [c for c in np.split(mine, np.unique(cuts)) if len(c)]
        self._built = [sparse_batch(rows, c, device=device, by_column=True) for c in self.chunks]

    def __iter__(self):
        for batch in self._built:
            yield batch, None
