"""What the library accepts as data, checked where data enters it (``fit``, ``evaluate``).

These checks sit above both :class:`~aerec.data.ratings.Ratings` and
:class:`~aerec.data.matrix.RatingMatrix` because they accept either: keeping them out of
``ratings.py`` lets the matrix build on ratings without ratings knowing about the matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from aerec.data.matrix import RatingMatrix
from aerec.data.ratings import Ratings, named_columns
from aerec.data.scale import IMPLICIT_SCALE
from aerec.errors import DataError

__all__ = ["as_ratings", "require_ratings"]


def as_ratings(data: Any, what: str = "the training data", *, events: bool = False) -> Any:
    """``data`` as the library takes it: :class:`Ratings` (or a ``RatingMatrix``) unchanged, a
    pandas DataFrame with columns user, item, rating[, timestamp] (or common names for them,
    such as MovieLens' userId, movieId) validated by
    :meth:`Ratings.from_frame`; with ``events``, a frame with no rating column is event data.
    A SciPy sparse matrix or array (:meth:`Ratings.from_sparse`: stored entries are ratings) and
    a 2-D NumPy array (:meth:`Ratings.from_dense`: NaN is missing) give ratings whose ids are
    the row (user) and column (item) positions.
    Anything else is a DataError that says what to pass."""
    if isinstance(data, (Ratings, RatingMatrix)):
        return data
    if sp.issparse(data):
        return Ratings.from_sparse(data)
    if isinstance(data, np.ndarray):
        return Ratings.from_dense(data)
    if isinstance(data, pd.DataFrame):
        data = named_columns(data)  # userId, movieId, user_id, ... as user, item
        if events and "rating" not in data.columns and {"user", "item"} <= set(data.columns):
            return Ratings.from_frame(data.assign(rating=1.0), scale=IMPLICIT_SCALE, implicit=True)
        return Ratings.from_frame(data)
    raise DataError(
        f"{what} must be Ratings, a pandas DataFrame with columns user, item, rating, "
        "a SciPy sparse matrix or a 2-D NumPy array (rows = users, columns = items)",
        value=type(data).__name__,
        fix="read a file with aerec.load_dataset(path), or wrap arrays with Ratings.from_arrays(users, items, ratings)",
    )


def require_ratings(data: Ratings, what: str = "the test data") -> Ratings:
    """``data`` when it holds ratings; event data (no rating column) is a DataError, since a
    rating model judged against events (every rating 1.0) would report a meaningless RMSE."""
    if data.implicit:
        raise DataError(
            f"{what} holds events (no rating column), and a rating model is judged on ratings", path=data.source,
            fix="give a file with a rating column (name it with --columns user,item,rating), or train a top-N "
                "model (ImplicitRecommender; on the command line --implicit)",
        )
    return data
