"""The bias model: global mean plus shrunk user and item biases.

``r_ui ~ mu + b_u + b_i``, fitted by a few rounds of alternating ridge updates (Koren 2010,
"Factor in the neighbors", section 2.1; Surprise's ``BaselineOnly`` with ALS). It is the
fallback for users or items a model never saw in training (counted as ``n_fallback``) and the
baseline every accuracy table is compared against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["BiasModel"]


@dataclass
class BiasModel:
    """Global mean with shrunk user and item biases.

    ``reg_user`` / ``reg_item`` shrink the biases of users/items with few ratings toward 0
    (Surprise's BaselineOnly defaults: 15 and 10).
    """

    reg_user: float = 15.0
    reg_item: float = 10.0
    rounds: int = 10

    def fit(self, data: Any) -> BiasModel:
        """Fit on ratings: :class:`~aerec.Ratings`, a DataFrame (user, item, rating), a
        :class:`~aerec.RatingMatrix`, or a ``(n_users, n_items)`` SciPy sparse matrix whose
        structure says which cells are observed (explicit zeros included), or a dense 2-D NumPy
        array with NaN for missing (checked as :meth:`~aerec.Ratings.from_dense` checks it).

        :meth:`predict` takes positions, not ids: for labelled data, ``users_`` and ``items_``
        (the vocabularies) turn ids into positions (``model.users_.index(ids)``); for a matrix or
        an array, the positions are its row and column indices.
        """
        if sp.issparse(data):
            csr = sp.csr_array(data)
        elif isinstance(data, np.ndarray):
            from aerec.data.ratings import Ratings

            f = Ratings.from_dense(data).frame
            csr = sp.csr_array((f["rating"].to_numpy(), (f["user"].to_numpy(), f["item"].to_numpy())), shape=data.shape)
        else:
            from aerec.data.matrix import RatingMatrix
            from aerec.data.checks import as_ratings

            data = as_ratings(data, "BiasModel.fit's data")
            matrix = data if isinstance(data, RatingMatrix) else RatingMatrix.from_ratings(data)
            self.users_, self.items_, csr = matrix.users, matrix.items, matrix.csr
        n_users, n_items = csr.shape
        users = np.repeat(np.arange(n_users), np.diff(csr.indptr))
        items = csr.indices.astype(np.int64)
        r = csr.data.astype(np.float64)
        self.mu_ = float(r.mean()) if len(r) else 0.0
        bu, bi = np.zeros(n_users), np.zeros(n_items)
        n_u = np.bincount(users, minlength=n_users)
        n_i = np.bincount(items, minlength=n_items)
        for _ in range(self.rounds):
            bi = np.bincount(items, weights=r - self.mu_ - bu[users], minlength=n_items) / (n_i + self.reg_item)
            bu = np.bincount(users, weights=r - self.mu_ - bi[items], minlength=n_users) / (n_u + self.reg_user)
        self.user_bias_, self.item_bias_ = bu.astype(np.float32), bi.astype(np.float32)
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predictions for index pairs; an index of -1 (unknown) contributes no bias."""
        users, items = np.asarray(users), np.asarray(items)
        bu = np.where(users >= 0, self.user_bias_[np.clip(users, 0, None)], 0.0)
        bi = np.where(items >= 0, self.item_bias_[np.clip(items, 0, None)], 0.0)
        return (self.mu_ + bu + bi).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "mu": np.array([self.mu_], dtype=np.float32),
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BiasModel:
        model = cls()
        model.mu_ = float(arrays["mu"][0])
        model.user_bias_ = np.asarray(arrays["user_bias"], dtype=np.float32)
        model.item_bias_ = np.asarray(arrays["item_bias"], dtype=np.float32)
        return model
