"""Vocabulary: external ids (labels) <-> contiguous integer indices.

IDs live at the edges (files, the CLI, the HTTP API); inside, everything is an index into a
vocabulary. This is the one place that translates, with an explicit policy for unknown ids.
Labels are integers or strings and are never assumed to be contiguous or to start at 1.
"""

from __future__ import annotations

from typing import Any, Iterable, Literal

import numpy as np
import pandas as pd

from aerec.errors import DataError

__all__ = ["Vocabulary", "UnknownPolicy"]

UnknownPolicy = Literal["error", "missing"]
"""What to do with a label the vocabulary does not know: raise a DataError naming it
(``"error"``) or return index -1 so the caller can use its fallback (``"missing"``)."""


def _normalise_labels(labels: Any) -> np.ndarray:
    """Labels as an int64 array when they are all integers, else as an array of str."""
    arr = np.asarray(labels)
    if arr.dtype.kind in "iu":
        return _int64(arr)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return _int64(arr)
        return arr.astype(str)
    if arr.dtype.kind == "O":
        # A mix such as [1, "a"]: every label becomes its text so lookups are unambiguous.
        if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in arr.tolist()):
            return _int64(arr)
        return np.array([str(x) for x in arr.tolist()], dtype=object).astype(str)
    return arr.astype(str)


def _int64(arr: np.ndarray) -> np.ndarray:
    """Integer labels as int64; an id outside its range is a DataError, never a silent wrap."""
    if arr.dtype == np.int64 or arr.size == 0:
        return arr
    if arr.dtype.kind == "i" and arr.dtype.itemsize <= 8:
        return arr.astype(np.int64)
    # uint64, floats and Python ints (object arrays) can hold values int64 cannot.
    big = arr.max() if arr.dtype.kind == "u" else max(abs(arr.max()), abs(arr.min()))
    if big >= 2**63:
        raise DataError("an integer id is too large for a 64-bit integer", value=big.item() if hasattr(big, "item") else big,
                        fix="write such ids as text")
    return arr.astype(np.int64)


class Vocabulary:
    """An ordered set of distinct labels; ``index(label)`` gives its position.

    >>> v = Vocabulary([10, 3, 7])
    >>> v.index([7, 10]).tolist()
    [1, 2]
    >>> v.labels.tolist()
    [3, 7, 10]
    """

    def __init__(self, labels: Iterable[Any], *, name: str = "id", sort: bool = True) -> None:
        arr = _normalise_labels(list(labels) if not isinstance(labels, (np.ndarray, pd.Index, pd.Series)) else labels)
        index = pd.Index(arr)
        if sort:
            index = index.unique().sort_values()
        elif not index.is_unique:
            dup = index[index.duplicated()][0]
            raise DataError(f"duplicate {name} in a vocabulary", value=_plain(dup), fix="give each label once")
        self._index = index
        self.name = name

    @classmethod
    def from_values(cls, values: Any, *, name: str = "id") -> Vocabulary:
        """The sorted distinct labels of ``values`` (e.g. a ratings column)."""
        return cls(pd.unique(pd.Series(_normalise_labels(values))), name=name)

    @property
    def labels(self) -> np.ndarray:
        """The labels in index order."""
        return self._index.to_numpy()

    @property
    def is_integer(self) -> bool:
        return self._index.dtype.kind in "iu"

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, label: Any) -> bool:
        return self.index([label], unknown="missing")[0] >= 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._index.equals(other._index)

    def __repr__(self) -> str:
        return f"Vocabulary({self.name}, n={len(self)})"

    def index(self, labels: Any, *, unknown: UnknownPolicy = "error") -> np.ndarray:
        """Indices (int64) of ``labels``; unknown labels raise or map to -1 per ``unknown``."""
        query = _normalise_labels(_query_labels(labels, self.name))
        original = query
        if self.is_integer and query.dtype.kind not in "iu":
            # String labels that spell integers ("42") match integer vocabularies.
            query = _maybe_int(query)
        elif not self.is_integer and query.dtype.kind in "iu":
            query = query.astype(str)
        idx = self._index.get_indexer(query).astype(np.int64, copy=False)
        if unknown == "error" and (idx < 0).any():
            bad = original[np.flatnonzero(idx < 0)[0]]
            raise DataError(
                f"unknown {self.name}",
                value=_plain(bad),
                fix=f"use one of the {len(self)} known {self.name}s, or handle new ones with the fallback",
            )
        return idx

    def label(self, indices: Any) -> np.ndarray:
        """Labels of ``indices`` (the inverse of :meth:`index`)."""
        return self._index.to_numpy()[np.asarray(indices, dtype=np.int64)]

    def to_list(self) -> list:
        """JSON-ready labels (ints stay ints, strings stay strings)."""
        return [_plain(x) for x in self._index.tolist()]

    @classmethod
    def from_list(cls, labels: list, *, name: str = "id") -> Vocabulary:
        return cls(np.asarray(labels) if labels else np.empty(0, dtype=np.int64), name=name, sort=False)

    def union(self, other: Vocabulary) -> Vocabulary:
        """A vocabulary of the labels of both (sorted)."""
        a, b = self.labels, other.labels
        if (a.dtype.kind in "iu") != (b.dtype.kind in "iu"):
            a, b = a.astype(str), b.astype(str)
        return Vocabulary(np.concatenate([a, b]), name=self.name)


def _query_labels(labels: Any, name: str) -> np.ndarray:
    """``labels`` to look up as a 1-D array; a nested, missing or boolean id is a DataError
    (it would otherwise become a text such as "[1, 2]" or "nan" and fall back silently)."""
    a = "an" if name[:1] in "aeiou" else "a"
    nested = DataError(f"{name}s must be a flat sequence, one {name} each", fix="pass a list or a 1-D array")
    try:
        arr = np.atleast_1d(np.asarray(labels, dtype=object if _is_mixed(labels) else None))
    except ValueError:  # ragged nesting such as [[1, 2], [3]]
        raise nested from None
    if arr.ndim > 1:
        raise nested
    # infer_dtype first: a Python loop over millions of text labels would slow every lookup.
    maybe_bool = arr.dtype.kind == "O" and pd.api.types.infer_dtype(arr, skipna=True) in ("boolean", "mixed", "mixed-integer")
    if arr.dtype.kind == "b" or (maybe_bool and any(isinstance(x, (bool, np.bool_)) for x in arr.tolist())):
        raise DataError(f"{a} {name} cannot be True or False", value=arr.tolist()[:5], fix="use integer or text ids")
    missing = pd.isna(arr) if arr.dtype.kind in "fO" else np.zeros(len(arr), dtype=bool)
    if missing.any():
        k = int(np.flatnonzero(missing)[0])
        raise DataError(f"{a} {name} is missing (None or NaN) at position {k}", fix=f"give every position {a} {name}")
    return arr


def _is_mixed(labels: Any) -> bool:
    return isinstance(labels, (list, tuple)) and len({type(x) for x in labels}) > 1


def _maybe_int(query: np.ndarray) -> np.ndarray:
    """Texts that spell a whole number in decimal ("42", " 42", "+42") as int64; anything
    else ("1e2", "4.0", "x") as a value no vocabulary holds."""
    text = pd.Series(query, dtype=object).astype(str).str.strip()
    ok = text.str.fullmatch(r"[+-]?\d{1,19}").to_numpy(dtype=bool)
    result = np.full(len(query), np.iinfo(np.int64).min, dtype=np.int64)
    values = [int(t) for t in text[ok]]  # Python ints: 19 digits can pass int64, and must not wrap
    fits = np.array([-(2**63) < v < 2**63 for v in values], dtype=bool)
    result[np.flatnonzero(ok)[fits]] = np.array([v for v, f in zip(values, fits) if f], dtype=np.int64)
    return result


def _plain(x: Any) -> Any:
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.str_):
        return str(x)
    return x
