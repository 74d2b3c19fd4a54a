"""Implicit-feedback views of rating data: which cells count as positives (docs/evaluation.md).

Rating data becomes implicit feedback by a threshold: a rating at or above it is a positive
("the user liked it"), everything else (a low rating, or no rating) is not. Event logs with no
rating at all (``Ratings.implicit``) are positives as they are. The result is a binarised
CSR matrix: the structure holds the positives, every value is 1.0.

Default thresholds (:func:`default_threshold`): the smallest level of the scale at or above
60 % of the way from its low to its high end. That is >= 4 on whole stars 1..5 and >= 3.5 on
half stars 0.5..5 (Mult-VAE's choice on MovieLens), 1 ("liked") on like/dislike data 0..1 and
>= 7 on 1..10.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from aerec.data.matrix import RatingMatrix
from aerec.data.ratings import Ratings
from aerec.data.readers import IMPLICIT_SCALE
from aerec.data.scale import RatingScale
from aerec.data.vocab import Vocabulary
from aerec.errors import ConfigError, DataError

__all__ = ["default_threshold", "implicit_matrix", "implicit_view", "positives"]

def default_threshold(scale: RatingScale) -> float:
    """The lowest rating that counts as a positive on ``scale`` (see the module docstring)."""
    return scale.liked_from()


def _check_threshold(threshold: float | None, ratings_scale: RatingScale, implicit: bool, source: str) -> float:
    """The threshold to use: 1.0 for events, else the given one (checked) or the default."""
    if implicit:
        if threshold is not None:
            raise ConfigError(
                f"{source} holds events without ratings: every event is a positive, there is nothing to "
                f"threshold (got threshold {threshold}); leave --threshold out"
            )
        return 1.0
    if threshold is None:
        return default_threshold(ratings_scale)
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not math.isfinite(threshold):
        raise ConfigError(f"threshold must be a number on the rating scale {ratings_scale}; got {threshold!r}")
    if not ratings_scale.low < threshold <= ratings_scale.high:
        raise ConfigError(
            f"threshold {threshold:g} keeps {'every' if threshold <= ratings_scale.low else 'no'} rating of the scale "
            f"{ratings_scale}; choose one above {ratings_scale.low:g} and at most {ratings_scale.high:g}"
        )
    return float(threshold)


def positives(values: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask of the values that count as positives (``>= threshold``)."""
    return np.asarray(values, dtype=np.float64) >= threshold - 1e-9


def implicit_view(ratings: Ratings, threshold: float | None = None) -> Ratings:
    """The positives of ``ratings`` as events (rating 1.0, scale 0..1, ``implicit=True``).

    Rows keep their line numbers. ``ratings.meta["threshold"]`` records the threshold used
    (None for event data, which is returned as it is).
    """
    t = _check_threshold(threshold, ratings.scale, ratings.implicit, ratings.source)
    if ratings.implicit:
        return ratings
    keep = positives(ratings.frame["rating"].to_numpy(), t)
    if not keep.any():
        raise DataError(
            f"no rating reaches the threshold {t:g}: there are no positives to learn from",
            path=ratings.source, fix="lower --threshold, or check the rating scale",
        )
    view = ratings.subset(keep)
    frame = view.frame.assign(rating=np.float32(1.0))
    return replace(view, frame=frame, scale=IMPLICIT_SCALE, implicit=True, meta={**ratings.meta, "threshold": t})


def implicit_matrix(
    data: Ratings | RatingMatrix,
    threshold: float | None = None,
    *,
    users: Vocabulary | None = None,
    items: Vocabulary | None = None,
) -> tuple[RatingMatrix, float]:
    """A binarised matrix of the positives of ``data``, and the threshold used.

    The vocabularies are those of *all* of ``data`` (or the given ones), so a user who rated
    but liked nothing is still known (with an empty row) and an item nobody liked is a column
    that is never recommended. Values are 1.0; the scale is 0..1; ``implicit`` is True.
    """
    if isinstance(data, RatingMatrix):
        t = _check_threshold(threshold, data.scale, data.implicit, "the matrix")
        keep = positives(data.csr.data, t) if not data.implicit else np.ones(data.nnz, dtype=bool)
        kept, _ = data.split_cells(~keep)
        csr = sp.csr_array((np.ones(kept.nnz, dtype=np.float32), kept.csr.indices, kept.csr.indptr), shape=kept.shape)
        csr.has_sorted_indices = True
        return RatingMatrix(csr, data.users, data.items, IMPLICIT_SCALE, None, data.item_info, True), t
    t = _check_threshold(threshold, data.scale, data.implicit, data.source)
    frame = data.frame
    users = users or Vocabulary.from_values(frame["user"].to_numpy(), name="user")
    items = items or Vocabulary.from_values(frame["item"].to_numpy(), name="item")
    view = implicit_view(data, None if data.implicit else t)
    matrix = RatingMatrix.from_ratings(view, users=users, items=items, unknown="drop")
    matrix.item_info = data.item_info
    return matrix, t
