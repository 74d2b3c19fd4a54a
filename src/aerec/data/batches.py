"""Rows of a sparse rating matrix, handed to PyTorch one batch at a time.

Only a batch is ever dense: ``(batch, n_cols)`` values plus a mask of observed cells. The mask
is what makes a stored 0 (a dislike) different from a blank.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from aerec.data.matrix import row_positions

__all__ = ["dense_rows", "sparse_rows", "iter_row_batches"]


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
