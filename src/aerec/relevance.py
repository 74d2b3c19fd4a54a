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
from scipy.special import expit, log_expit

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
        # The fit runs on standardised predictions, where Newton's method converges in a few steps.
        mean, spread = float(pred.mean()), max(float(pred.std()), 1e-6)
        a, b = _logistic_newton((pred - mean) / spread, liked)
        if a <= 1e-6 * spread:  # a rating model's relevance never falls as its prediction rises
            return cls(float(threshold), 1e-6, float(np.median(pred)), fitted_on)
        return cls(float(threshold), a / spread, mean - b * spread / a, fitted_on)

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


def _logistic_newton(x: np.ndarray, liked: np.ndarray, ridge: float = 1e-6) -> tuple[float, float]:
    """``(a, b)`` minimising the mean negative log-likelihood of ``liked ~ sigmoid(a x + b)``
    (plus ``ridge (a^2 + b^2) / 2``, which keeps perfectly separated data finite).

    Two parameters and a convex objective: Newton's method with step halving reaches the optimum
    to machine precision in about ten steps. Written out because the general optimiser that would
    do it, ``scipy.optimize``, takes 0.3 s to import, 3 % of the whole ``aerec train`` command.
    """
    design = np.column_stack([x, np.ones_like(x)])  # (n, 2)
    y = liked.astype(np.float64)

    def objective(w: np.ndarray) -> float:
        z = design @ w
        return -float(np.mean(np.where(liked, log_expit(z), log_expit(-z)))) + ridge * float(w @ w) / 2

    w = np.zeros(2)
    current = objective(w)
    for _ in range(100):
        p = expit(design @ w)
        grad = design.T @ (p - y) / len(y) + ridge * w
        hess = (design * (p * (1 - p))[:, None]).T @ design / len(y) + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        t, trial = 1.0, objective(w - step)
        while t > 1e-10 and trial > current:  # halve the step until the objective does not rise
            t /= 2
            trial = objective(w - t * step)
        w, current = w - t * step, trial
        if np.abs(t * step).max() < 1e-12:
            break
    return float(w[0]), float(w[1])

