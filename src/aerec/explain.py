"""Why a recommendation: the user's own rated items that pushed it up most.

Every estimator answers one question, :meth:`~aerec.base.Estimator.because`: for target items
``T`` and a user's rated items ``K``, a matrix ``contrib`` ``(len(T), len(K))`` of each rated
item's contribution to each target's score, in the units of what the model computes
(docs/explanations.md says which quantity, and how faithful, per family). This module turns
such a matrix into the short "because you liked ..." lists: the ``top`` largest *positive*
contributions of each row, largest first. A rated item that lowered the score, or changed
nothing, is never a reason.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from aerec.errors import DataError

__all__ = ["DEFAULT_EXPLAIN_TOP", "because_lists", "check_explain"]

DEFAULT_EXPLAIN_TOP = 3
"""Rated items shown per recommendation unless asked otherwise."""


def check_explain(explain: Any, explain_top: Any) -> None:
    """``explain`` is True or False and ``explain_top`` a positive whole number (a
    :class:`DataError` naming the value otherwise)."""
    if not isinstance(explain, (bool, np.bool_)):
        raise DataError("explain must be True or False", value=explain,
                        fix="say how many items to show with explain_top=N")
    if not isinstance(explain_top, (int, np.integer)) or isinstance(explain_top, bool) or explain_top < 1:
        raise DataError("the number of items that explain a recommendation must be a positive whole number",
                        value=explain_top, fix=f"give explain_top=1 or more (default {DEFAULT_EXPLAIN_TOP})")


def because_lists(contrib: np.ndarray, rated: Sequence[Any], ratings: np.ndarray, top: int,
                  titles: Sequence[str | None] | None = None) -> list[list[dict[str, Any]]]:
    """One list per row of ``contrib`` ``(n_targets, k)``: up to ``top`` records ``{item,
    rating, contribution[, title]}`` of the rated items with the largest positive
    contributions, largest first.

    ``rated`` are the ``k`` rated items' ids, ``ratings`` ``(k,)`` the user's ratings of them
    (NaN where the model keeps none: an implicit model's known users), ``titles`` their titles
    (None: the model has none).
    """
    contrib = np.asarray(contrib, dtype=np.float64)
    out = []
    for row in contrib:  # (k,)
        order = np.argsort(-row, kind="stable")[:top]
        order = order[row[order] > 0]
        records = []
        for j in order.tolist():
            record = {"item": rated[j], "rating": None if math.isnan(ratings[j]) else float(ratings[j]),
                      "contribution": float(row[j])}
            if titles is not None:
                record["title"] = titles[j]
            records.append(record)
        out.append(records)
    return out
