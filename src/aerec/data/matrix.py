"""The sparse users x items rating matrix.

The CSR structure *is* the set of observed cells: a stored 0.0 is a real rating (a dislike in
like/dislike data: docs/architecture.md), and a cell outside the structure is unrated. Nothing here ever
builds a dense users x items array; rows reach PyTorch one batch at a time (:mod:`aerec.data.batches`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from aerec.data.ratings import Ratings
from aerec.data.scale import RatingScale
from aerec.data.vocab import UnknownPolicy, Vocabulary
from aerec.errors import DataError

__all__ = ["RatingMatrix", "Orientation", "row_positions"]

Orientation = Literal["user", "item"]
"""Which rows a model reads: users (U-AutoRec, the course's SAE) or items (I-AutoRec)."""


def _csr_from_coo(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> tuple[sp.csr_array, np.ndarray]:
    """Build a CSR with sorted indices whose structure is exactly the given cells.

    SciPy's own coo->csr conversion keeps explicit zeros today, but we build the arrays
    ourselves so that "observed" never depends on that. Returns the matrix and the
    permutation that took the input order to CSR order (to carry timestamps along).
    """
    order = np.lexsort((cols, rows))  # by row, then column
    r, c = rows[order], cols[order]
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=shape[0]), out=indptr[1:])
    index_dtype = np.int32 if max(shape) < 2**31 and len(order) < 2**31 else np.int64
    csr = sp.csr_array(
        (values[order].astype(np.float32, copy=False), c.astype(index_dtype, copy=False), indptr.astype(index_dtype, copy=False)),
        shape=shape,
    )
    csr.has_sorted_indices = True
    return csr, order


def _has_duplicate_cells(csr: sp.csr_array) -> int:
    """Position in ``csr.data`` of a repeated (row, col) cell, or -1 (indices are sorted)."""
    same_col = np.diff(csr.indices) == 0
    if not same_col.any():
        return -1
    row_start = np.zeros(csr.nnz, dtype=bool)
    row_start[csr.indptr[:-1][np.diff(csr.indptr) > 0]] = True
    repeats = np.flatnonzero(same_col & ~row_start[1:])
    return int(repeats[0]) + 1 if len(repeats) else -1


def row_positions(indptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions in ``data`` of the given rows' entries, row by row (vectorised ranges)."""
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = (ends - starts).astype(np.int64)
    if lengths.sum() == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(lengths.sum(), dtype=np.int64) + offsets


@dataclass
class RatingMatrix:
    """Users x items ratings in CSR, with the vocabularies that name its rows and columns.

    Attributes:
        csr: ``(n_users, n_items)`` float32 CSR; the structure is the set of observed cells.
        users, items: vocabularies mapping labels to row / column indices.
        scale: the rating scale.
        timestamps: int64 array aligned with ``csr.data`` (or None).
        item_info: item metadata (title, genres) indexed by item label, when known.
        implicit: True when the values are events (1.0) rather than ratings.
    """

    csr: sp.csr_array
    users: Vocabulary
    items: Vocabulary
    scale: RatingScale
    timestamps: np.ndarray | None = None
    item_info: pd.DataFrame | None = None
    implicit: bool = False
    _item_view: sp.csr_array | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_ratings(
        cls,
        ratings: Ratings,
        *,
        users: Vocabulary | None = None,
        items: Vocabulary | None = None,
        unknown: UnknownPolicy | Literal["drop"] = "error",
    ) -> RatingMatrix:
        """Build from a :class:`Ratings` table.

        With ``users``/``items`` given, the matrix uses those vocabularies (e.g. a training
        set's, so a test matrix lines up with it); ratings of labels they do not know raise
        (``unknown="error"``) or are dropped (``"drop"``). Otherwise the vocabularies are the
        sorted distinct labels of the data.
        """
        f = ratings.frame
        users = users or Vocabulary.from_values(f["user"].to_numpy(), name="user")
        items = items or Vocabulary.from_values(f["item"].to_numpy(), name="item")
        policy: UnknownPolicy = "missing" if unknown in ("drop", "missing") else "error"
        rows = users.index(f["user"].to_numpy(), unknown=policy)
        cols = items.index(f["item"].to_numpy(), unknown=policy)
        values = f["rating"].to_numpy(dtype=np.float32)
        ts = f["timestamp"].to_numpy(dtype=np.int64) if "timestamp" in f.columns else None
        keep = (rows >= 0) & (cols >= 0)
        if not keep.all():
            rows, cols, values = rows[keep], cols[keep], values[keep]
            ts = ts[keep] if ts is not None else None
        csr, order = _csr_from_coo(rows, cols, values, (len(users), len(items)))
        dup = _has_duplicate_cells(csr)
        if dup >= 0:
            # Same (row, col) twice: only possible when the frame was not validated.
            row = int(np.searchsorted(csr.indptr, dup, side="right") - 1)
            raise DataError(
                "duplicate (user, item) pair", path=ratings.source,
                value=(users.to_list()[row], items.to_list()[int(csr.indices[dup])]),
                fix="build Ratings with duplicates='last' or 'mean'",
            )
        return cls(
            csr=csr,
            users=users,
            items=items,
            scale=ratings.scale,
            timestamps=ts[order] if ts is not None else None,
            item_info=ratings.item_info,
            implicit=ratings.implicit,
        )

    def to_ratings(self) -> Ratings:
        """Back to a table of labelled ratings (in row-major order)."""
        coo_rows = np.repeat(np.arange(self.n_users), np.diff(self.csr.indptr))
        data = {
            "user": self.users.label(coo_rows),
            "item": self.items.label(self.csr.indices),
            "rating": self.csr.data.astype(np.float32),
        }
        if self.timestamps is not None:
            data["timestamp"] = self.timestamps
        return Ratings(pd.DataFrame(data), self.scale, "<matrix>", self.item_info, self.implicit)

    # ------------------------------------------------------------------ shape and stats
    @property
    def shape(self) -> tuple[int, int]:
        return self.csr.shape

    @property
    def n_users(self) -> int:
        return self.csr.shape[0]

    @property
    def n_items(self) -> int:
        return self.csr.shape[1]

    @property
    def nnz(self) -> int:
        """Number of observed cells (explicit zeros included)."""
        return int(self.csr.nnz)

    def __len__(self) -> int:
        return self.nnz

    @property
    def density(self) -> float:
        return self.nnz / (self.n_users * self.n_items) if self.n_users and self.n_items else 0.0

    def user_counts(self) -> np.ndarray:
        """Ratings per user, shape ``(n_users,)``."""
        return np.diff(self.csr.indptr).astype(np.int64)

    def item_counts(self) -> np.ndarray:
        """Ratings per item, shape ``(n_items,)``."""
        return np.bincount(self.csr.indices, minlength=self.n_items).astype(np.int64)

    def global_mean(self) -> float:
        return float(self.csr.data.mean()) if self.nnz else float((self.scale.low + self.scale.high) / 2)

    def observed(self, user: int, item: int) -> bool:
        """Whether cell (user, item) is rated (a stored 0 counts)."""
        lo, hi = self.csr.indptr[user], self.csr.indptr[user + 1]
        j = np.searchsorted(self.csr.indices[lo:hi], item)
        return bool(j < hi - lo and self.csr.indices[lo + j] == item)

    # ------------------------------------------------------------------ views
    def rows(self, orientation: Orientation = "user") -> sp.csr_array:
        """The CSR a model reads: users x items, or the item-based view items x users."""
        if orientation == "user":
            return self.csr
        if orientation == "item":
            return self.item_view()
        raise DataError("orientation must be 'user' or 'item'", value=orientation)

    def item_view(self) -> sp.csr_array:
        """Items x users CSR with the same observed cells (built once, then cached)."""
        if self._item_view is None:
            coo_rows = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.csr.indptr))
            t, _ = _csr_from_coo(self.csr.indices.astype(np.int64), coo_rows, self.csr.data, (self.n_items, self.n_users))
            self._item_view = t
        return self._item_view

    def select_users(self, user_indices: np.ndarray) -> RatingMatrix:
        """A matrix of the given users' rows (vocabularies narrowed for users, kept for items)."""
        idx = np.asarray(user_indices, dtype=np.int64)
        sub = self.csr[idx]
        sub.sort_indices()
        ts = None
        if self.timestamps is not None:
            ts = self.timestamps[row_positions(self.csr.indptr, idx)]
        return RatingMatrix(
            csr=sp.csr_array(sub), users=Vocabulary.from_list(self.users.label(idx).tolist(), name="user"),
            items=self.items, scale=self.scale, timestamps=ts, item_info=self.item_info, implicit=self.implicit,
        )

    def split_cells(self, holdout: np.ndarray) -> tuple[RatingMatrix, RatingMatrix]:
        """Two matrices over the same vocabularies: the cells where ``holdout`` (a boolean mask
        over ``csr.data``) is False, and those where it is True. Used to carve validation."""
        holdout = np.asarray(holdout, dtype=bool)
        parts = []
        for keep in (~holdout, holdout):
            counts = np.bincount(np.repeat(np.arange(self.n_users), np.diff(self.csr.indptr))[keep], minlength=self.n_users)
            indptr = np.zeros(self.n_users + 1, dtype=self.csr.indptr.dtype)
            np.cumsum(counts, out=indptr[1:])
            csr = sp.csr_array((self.csr.data[keep], self.csr.indices[keep], indptr), shape=self.shape)
            csr.has_sorted_indices = True
            ts = self.timestamps[keep] if self.timestamps is not None else None
            parts.append(RatingMatrix(csr, self.users, self.items, self.scale, ts, self.item_info, self.implicit))
        return parts[0], parts[1]

    def fingerprint(self) -> str:
        """SHA-256 of the structure and values: identifies the training data in model.json."""
        h = hashlib.sha256()
        for arr in (self.csr.indptr, self.csr.indices, self.csr.data):
            h.update(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
        h.update(repr(self.shape).encode())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """The same figures as :meth:`Ratings.summary` for the matrix."""
        return self.to_ratings().summary() | {"users": self.n_users, "items": self.n_items}
