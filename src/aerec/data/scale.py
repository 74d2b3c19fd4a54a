"""The rating scale: the lowest and highest rating and the step between levels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aerec.errors import DataError

__all__ = ["IMPLICIT_SCALE", "RatingScale"]


@dataclass(frozen=True)
class RatingScale:
    """Ratings run from ``low`` to ``high`` in steps of ``step`` (0 for a continuous scale).

    ``RatingScale(1, 5, 1)`` is MovieLens 100K/1M; ``RatingScale(0.5, 5, 0.5)`` the half-star
    datasets; ``RatingScale(0, 1, 1)`` like/dislike data, where 0 is a real rating (observed is not non-zero: docs/architecture.md).
    """

    low: float
    high: float
    step: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.low >= self.high:
            raise DataError(
                "a rating scale needs finite low < high",
                value=(self.low, self.high),
                fix="give the scale as LOW:HIGH[:STEP], e.g. 1:5:1",
            )
        if not np.isfinite(self.step) or self.step < 0:
            raise DataError("the scale's step must be >= 0", value=self.step, fix="use 0 for continuous")

    @property
    def is_binary(self) -> bool:
        """True for like/dislike data (0 and 1 only)."""
        return self.low == 0 and self.high == 1 and self.step == 1

    @property
    def levels(self) -> np.ndarray:
        """The discrete levels, e.g. ``[1, 2, 3, 4, 5]``; empty for a continuous scale."""
        if self.step == 0:
            return np.empty(0, dtype=np.float64)
        n = int(round((self.high - self.low) / self.step)) + 1
        return self.low + self.step * np.arange(n, dtype=np.float64)

    # Where on the scale "liked" starts, as a share of the way from low to high.
    LIKED_SHARE = 0.6

    def liked_from(self) -> float:
        """The lowest rating that counts as liked (relevant, a positive): the first level at or
        above 60 % of the way from ``low`` to ``high``. 1..5 -> 4, 0.5..5 by 0.5 -> 3.5 (Mult-VAE's
        choice on MovieLens), 0..1 -> 1, 1..10 -> 7, 1..100 -> 61."""
        cut = self.low + self.LIKED_SHARE * (self.high - self.low)
        if self.step and self.step > 0:
            steps = math.ceil((cut - self.low) / self.step - 1e-9)
            return float(self.low + steps * self.step)
        return float(cut)

    def clip(self, values):
        """Clip predictions into ``[low, high]`` (works on NumPy arrays and torch tensors)."""
        return values.clip(self.low, self.high)

    def outside(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of values below ``low`` or above ``high``."""
        return (values < self.low) | (values > self.high)

    def to_dict(self) -> dict[str, float]:
        return {"low": float(self.low), "high": float(self.high), "step": float(self.step)}

    @classmethod
    def from_dict(cls, d: dict) -> RatingScale:
        return cls(float(d["low"]), float(d["high"]), float(d.get("step", 0.0)))

    @classmethod
    def parse(cls, text: str) -> RatingScale:
        """Parse ``"1:5"`` or ``"0.5:5:0.5"``."""
        parts = str(text).split(":")
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            nums = []
        if len(nums) not in (2, 3):
            raise DataError("cannot read the rating scale", value=text, fix="write LOW:HIGH[:STEP], e.g. 1:5:1")
        return cls(*nums)

    @classmethod
    def infer(cls, values: np.ndarray) -> RatingScale:
        """Guess the scale from observed ratings: their range, and their common step if any.

        Integers give step 1; half-stars give step 0.5; anything else is continuous (step 0).
        """
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            raise DataError("cannot infer a rating scale from no ratings", fix="give --scale LOW:HIGH")
        low, high = float(values.min()), float(values.max())
        if low == high:
            # One distinct value: treat as implicit-style data on [0, high] or [low, low + 1].
            high = low + 1.0 if low <= 0 else high
            low = 0.0 if low > 0 else low
        step = 0.0
        for candidate in (1.0, 0.5):
            if np.all(np.abs(values / candidate - np.round(values / candidate)) < 1e-6):
                step = candidate
                break
        return cls(low, high, step)

    def __str__(self) -> str:
        def fmt(x: float) -> str:
            return f"{x:g}"

        return f"{fmt(self.low)}..{fmt(self.high)}" + (f" step {fmt(self.step)}" if self.step else " continuous")


# Where rating scales usually start and end; an inferred scale elsewhere may be missing a level.
IMPLICIT_SCALE = RatingScale(0, 1, 1)
"""The scale of event data read as implicit feedback: every observed cell is 1."""

_USUAL_LOWS = (0.0, 0.5, 1.0)
_USUAL_HIGHS = (1.0, 5.0, 10.0, 100.0)
RARE_HALF_STARS = 0.01  # below this share, half stars look like typos in a whole-star file


def scale_doubts(scale: RatingScale, values: np.ndarray) -> list[str]:
    """Reasons to doubt a scale that was inferred from the ratings (min..max, and the step):
    an unusual top or bottom (a 1..5 file where nobody gave a 5 reads as 1..4, and predictions
    would then never reach 5), or half stars so rare they look like typos. Each reason says
    how to declare the real scale (``--scale``, ``scale=``)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or scale.is_binary:
        return []
    doubts = []
    if scale.high not in _USUAL_HIGHS:
        doubts.append(
            f"the highest rating is {scale.high:g}, so the inferred scale is {scale}; if the real scale goes higher "
            f"(e.g. 1..5 with no {scale.high + 1:g} given), predictions will never reach it: declare it with "
            "--scale LOW:HIGH (scale=RatingScale(...))"
        )
    if scale.low not in _USUAL_LOWS:
        doubts.append(
            f"the lowest rating is {scale.low:g}, so the inferred scale is {scale}; if the real scale starts lower, "
            "declare it with --scale LOW:HIGH (scale=RatingScale(...))"
        )
    if scale.step == 0.5:
        half = float(np.mean(np.abs(values - np.round(values)) > 1e-6))
        if half < RARE_HALF_STARS:
            doubts.append(
                f"only {half:.2%} of the ratings are half stars, yet they make the scale {scale}; if they are "
                "typos, fix them, or declare whole stars with --scale LOW:HIGH:1"
            )
    return doubts
