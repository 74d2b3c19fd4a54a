"""A brand-new user's ``{item: rating}``, checked once for every place that takes one (the
rating and implicit recommenders, the HTTP server)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from aerec.data.scale import RatingScale
from aerec.data.vocab import Vocabulary
from aerec.errors import DataError

__all__ = ["known_items", "rating_values"]


def rating_values(ratings: Mapping[Any, Any], scale: RatingScale, *, fix: str | None = None) -> tuple[list, np.ndarray]:
    """The labels and float64 values of ``ratings``; a DataError names the first value that is
    not a real number on ``scale`` (booleans and numeric text are refused, not converted)."""
    if not isinstance(ratings, Mapping):
        raise DataError("a new user's ratings must be a mapping {item: rating}", value=type(ratings).__name__)
    labels = list(ratings.keys())
    raw = list(ratings.values())
    for label, value in zip(labels, raw):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise DataError("a new user's ratings must be numbers", value={label: value})
    values = np.asarray(raw, dtype=np.float64)
    if not np.isfinite(values).all():
        k = int(np.flatnonzero(~np.isfinite(values))[0])
        raise DataError("a new user's ratings must be finite numbers", value={labels[k]: float(values[k])})
    off = scale.outside(values)
    if off.any():
        k = int(np.flatnonzero(off)[0])
        raise DataError(f"rating outside the model's scale {scale}", value={labels[k]: float(values[k])},
                        fix=fix or f"rate from {scale.low:g} to {scale.high:g}")
    return labels, values


def known_items(
    labels: list, values: np.ndarray, items: Vocabulary, *, repeats: bool = False, stacklevel: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Item indices and values of the labels ``items`` knows; the others are dropped with a
    warning. Two labels of one item (``1`` and ``"1"``) are a DataError (which rating counts?)
    unless ``repeats`` (a list of liked items, where a repeat says nothing new: dropped)."""
    idx = items.index(labels, unknown="missing") if labels else np.empty(0, dtype=np.int64)
    if (idx < 0).any():
        unknown = [labels[k] for k in np.flatnonzero(idx < 0)]
        warnings.warn(f"ignoring {len(unknown)} item(s) the model does not know: {unknown[:5]}", stacklevel=stacklevel + 1)
    keep = np.flatnonzero(idx >= 0)
    _, first, counts = np.unique(idx[keep], return_index=True, return_counts=True)
    if repeats:
        keep = keep[np.sort(first)]
    elif (counts > 1).any():
        item = idx[keep][first[np.flatnonzero(counts > 1)[0]]]
        twice = [labels[k] for k in keep if idx[k] == item]
        raise DataError("one item is given twice", value=twice, fix="give each item once")
    return idx[keep], values[keep]
