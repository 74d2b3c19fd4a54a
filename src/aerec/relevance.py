"""How a rating model ranks: the chance that a user rates an item *and* likes it.

A predicted rating alone is a poor ranking: the best predictions are ties at the top of the
scale (once clipped) or items a handful of people rated, whose predictions rest on little.
What a user wants at the head of a list is an item they would pick *and* enjoy, so a rating
model ranks by::

    relevance(u, i) = share_i * P(rating >= threshold | prediction_ui)

``share_i`` is the share of training users who rated item ``i`` (how likely anyone is to pick
it at all; items nobody rated are never ranked), and ``P(. | prediction)`` a logistic
calibration ``sigmoid(slope * (prediction - center))`` fitted to validation ratings carved from
the training data (or, for a model fitted without them, to a sample of its training ratings).
``threshold`` is the scale's "liked" level (:meth:`~aerec.data.scale.RatingScale.liked_from`:
4 on 1..5, 3.5 on half stars). The predicted rating is still reported beside the relevance.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import log_expit

__all__ = ["Relevance"]


@dataclass(frozen=True)
class Relevance:
    """The ranking score of a rating model (see the module docstring)."""

    threshold: float
    slope: float
    center: float
    fitted_on: str = "validation"  # or "training" (no validation ratings), "default"

    @classmethod
    def fit(cls, prediction: np.ndarray, truth: np.ndarray, threshold: float, *, fitted_on: str = "validation",
            scale_range: float = 4.0) -> Relevance:
        """Logistic regression of ``truth >= threshold`` on ``prediction`` (two parameters).

        With fewer than 20 ratings on each side it falls back to a slope of 1 per unit of
        the scale and ``center = threshold``.
        """
        pred = np.asarray(prediction, dtype=np.float64)
        liked = np.asarray(truth, dtype=np.float64) >= threshold - 1e-9
        if min(int(liked.sum()), int((~liked).sum())) < 20:
            return cls(float(threshold), 4.0 / max(scale_range, 1e-9), float(threshold), "default")
        spread = max(float(pred.std()), 1e-6)

        def loss(w: np.ndarray) -> float:  # mean negative log-likelihood; w = (slope * spread, center)
            z = w[0] / spread * (pred - w[1])
            return -float(np.mean(np.where(liked, log_expit(z), log_expit(-z))))

        # Imported here: scipy.optimize takes 0.2-0.3 s to import, and the commands that only
        # load a model (recommend, evaluate, predict, serve) never fit a calibration.
        from scipy.optimize import minimize

        w = minimize(loss, np.array([1.0, float(np.median(pred))]), method="Nelder-Mead",
                     options={"xatol": 1e-4, "fatol": 1e-7}).x
        slope = max(w[0] / spread, 1e-6)  # a rating model's relevance never falls as its prediction rises
        return cls(float(threshold), float(slope), float(w[1]), fitted_on)

    def log_scores(self, prediction: np.ndarray, log_share: np.ndarray) -> np.ndarray:
        """``log relevance`` of predictions ``(..., n_items)`` given each item's ``log share``."""
        return log_share + log_expit(self.slope * (np.asarray(prediction, dtype=np.float64) - self.center))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Relevance:
        out = cls(float(data["threshold"]), float(data["slope"]), float(data["center"]),
                  str(data.get("fitted_on", "validation")))
        if not all(np.isfinite([out.threshold, out.slope, out.center])) or out.slope <= 0:
            raise ValueError(f"relevance must have finite numbers and a positive slope; got {data}")
        return out
