"""Rows of a sparse rating matrix, handed to PyTorch one batch at a time.

Two forms. :func:`dense_rows`: only a batch is ever dense, ``(batch, n_cols)`` values plus a
mask of observed cells; the mask is what makes a stored 0 (a dislike) different from a blank.
:func:`sparse_batch`: the batch stays sparse (:class:`SparseBatch`, CSR parts as tensors), for
networks that read their input and score their output at the observed cells only (the
trainer's sparse path, :func:`aerec.training.choose_batch_format`); nothing of size
``(batch, n_cols)`` is made at all.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from aerec.data.matrix import row_positions

# torch marks sparse CSR tensors as beta on their first use; the sparse path (aerec.models.autoencoder)
# uses only their stable core (construction, sampled_addmm, sparse.mm), so the notice says
# nothing to our users.
SPARSE_BETA_NOTICE = "Sparse CSR tensor support is in beta"
warnings.filterwarnings("ignore", message=SPARSE_BETA_NOTICE, category=UserWarning)

__all__ = ["column_pattern", "dense_rows", "sparse_rows", "sparse_batch", "SparseBatch", "observed_targets", "iter_row_batches"]


def _coo_parts(csr: sp.csr_array, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch-local row ids, column ids and values of the given rows' entries."""
    rows = np.asarray(rows, dtype=np.int64)
    pos = row_positions(csr.indptr, rows)
    lengths = (csr.indptr[rows + 1] - csr.indptr[rows]).astype(np.int64)
    local = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    return local, csr.indices[pos].astype(np.int64), csr.data[pos]


def dense_rows(
    csr: sp.csr_array,
    rows: np.ndarray,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense ``(len(rows), n_cols)`` values and a 0/1 mask of observed cells for some rows.

    For a CUDA ``device`` only the rows' entries cross to the GPU (pinned, non-blocking) and the
    dense block is made there (:func:`aerec.device.dense_on_device`).
    """
    local, cols, vals = _coo_parts(csr, rows)
    if device is not None and torch.device(device).type == "cuda":
        from aerec.device import dense_on_device

        return dense_on_device(local, cols, vals, (len(rows), csr.shape[1]), device, dtype)
    values = torch.zeros(len(rows), csr.shape[1], dtype=dtype)
    mask = torch.zeros(len(rows), csr.shape[1], dtype=dtype)
    li, ci = torch.from_numpy(local), torch.from_numpy(cols)
    values[li, ci] = torch.from_numpy(np.asarray(vals, dtype=np.float32)).to(dtype)
    mask[li, ci] = 1.0
    if device is not None:
        values, mask = values.to(device, non_blocking=True), mask.to(device, non_blocking=True)
    return values, mask


def sparse_rows(csr: sp.csr_array, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The given rows' entries as COO parts: batch-local row ids, column ids, values (float32)."""
    local, cols, vals = _coo_parts(csr, rows)
    return torch.from_numpy(local), torch.from_numpy(cols), torch.from_numpy(np.asarray(vals, dtype=np.float32))


@dataclass(frozen=True)
class SparseBatch:
    """Some rows of a sparse matrix as torch tensors, in CSR order: ``(n_rows, n_cols)`` with ``nnz`` cells.

    Every stored entry is an observed cell (a stored 0 included). ``offsets`` are the batch's
    row pointers, ``(n_rows + 1,)``; ``cols`` and ``values`` ``(nnz,)`` hold the cells row by
    row, and ``row_ids`` ``(nnz,)`` the batch-local row of each cell. ``shape``, ``numel()`` and
    ``device`` read as a dense ``(n_rows, n_cols)`` batch's would.
    """

    offsets: torch.Tensor  # (n_rows + 1,) int64
    cols: torch.Tensor  # (nnz,) int64
    values: torch.Tensor  # (nnz,) float32
    row_ids: torch.Tensor  # (nnz,) int64
    n_cols: int
    # The pattern read column by column (column_pattern), for a batch used many times: the
    # full-batch L-BFGS chunks. None for a minibatch, used once.
    by_column: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @property
    def n_rows(self) -> int:
        return int(self.offsets.shape[0]) - 1

    @property
    def nnz(self) -> int:
        return int(self.cols.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.n_cols)

    @property
    def device(self) -> torch.device:
        return self.values.device

    def numel(self) -> int:
        """Cells of the dense batch this stands for (what a per-cell normalisation divides by)."""
        return self.n_rows * self.n_cols

    def counts(self) -> torch.Tensor:
        """Observed cells per row, ``(n_rows,)`` float."""
        return torch.diff(self.offsets).to(self.values.dtype)


def column_pattern(cols: torch.Tensor, row_ids: torch.Tensor, n_cols: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch's pattern read column by column (the transpose's CSR parts).

    ``(col_offsets (n_cols + 1,), rows (nnz,), order (nnz,))``: column ``j``'s cells are
    ``order[col_offsets[j]:col_offsets[j + 1]]`` of the batch's cells, ``rows`` their batch rows,
    ascending. A per-cell tensor ``v (nnz,)`` in CSR order reads ``v[order]`` in this order, so a
    backward product ``X.T @ G`` is a row-ordered CSR product too (aerec.models.autoencoder).
    """
    order = torch.argsort(cols, stable=True)  # rows ascend within a column: CSR order is row-major
    col_offsets = torch.zeros(n_cols + 1, dtype=torch.int64, device=cols.device)
    torch.cumsum(torch.bincount(cols, minlength=n_cols), 0, out=col_offsets[1:])
    return col_offsets, row_ids[order], order


def sparse_batch(
    csr: sp.csr_array,
    rows: np.ndarray,
    *,
    device: torch.device | str | None = None,
    by_column: bool = False,
) -> SparseBatch:
    """The given rows of ``csr`` as a :class:`SparseBatch` (row order as given; float32 values);
    ``by_column`` also reads its pattern by column (:func:`column_pattern`), for a batch that is
    used many times."""
    rows = np.asarray(rows, dtype=np.int64)
    local, cols, vals = _coo_parts(csr, rows)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(csr.indptr[rows + 1] - csr.indptr[rows], out=offsets[1:])
    parts = [torch.from_numpy(offsets), torch.from_numpy(cols), torch.from_numpy(np.asarray(vals, dtype=np.float32)),
             torch.from_numpy(local)]
    if device is not None:
        parts = [t.to(device, non_blocking=True) for t in parts]
    pattern = column_pattern(parts[1], parts[3], int(csr.shape[1])) if by_column else None
    return SparseBatch(*parts, n_cols=int(csr.shape[1]), by_column=pattern)


def observed_targets(x, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """``(target, mask)`` for a loss: a dense batch's own, or a :class:`SparseBatch`'s values with a
    mask of ones (its outputs are already the observed cells only, ``(nnz,)``)."""
    if isinstance(x, SparseBatch):
        return x.values, torch.ones_like(x.values)
    return x, mask


def iter_row_batches(
    n_rows: int,
    batch_size: int,
    *,
    shuffle: bool = True,
    rng: np.random.Generator | None = None,
    rows: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """Index arrays of at most ``batch_size`` rows covering ``rows`` (default all) once.

    Shuffling draws from ``rng`` so a seeded generator gives the same batches every time.
    """
    order = np.arange(n_rows, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    if shuffle:
        order = (rng or np.random.default_rng()).permutation(order)
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
