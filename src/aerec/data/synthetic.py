"""Built-in offline datasets: the ``toy`` like/dislike matrix and ``synthetic`` MovieLens-like ratings.

``toy``
    The worked example of docs/architecture.md: 11 users x 6 movies, 1 = liked, 0 = disliked, 9 blanks, so
    57 observed cells of which the zeros are real ratings.

``synthetic``
    Explicit ratings drawn from a known low-rank model, sized and skewed like MovieLens, built
    chunk by chunk so that 10^7..10^8 ratings fit in bounded memory. Because the model is known,
    so is the best RMSE any predictor can reach on it (the *noise floor*).

The generative model (all parameters on the reference scale 1..5; see below for other scales)
-------------------------------------------------------------------------------------------
Sizes. ``n_users`` defaults to ``max(round(n / 106), round(sqrt(n)))`` and ``n_items`` to
``round(1682 * (n / 1e5) ** 0.6)``, raised if needed so the density stays <= 30 %
(:func:`synthetic_sizes`). So ``n = 10^5`` gives ML-100K's 943 users x 1682 items (density
6.3 %), ``10^6`` 9434 x 6696, ``10^7`` 94340 x 26658 and ``10^8`` 943396 x 106127 (0.1 %).

Who rates how much (user activity). Each user gets ``m`` ratings at least, with
``m = clamp(floor(n / n_users / 5), 1, 20)`` (20 at the default sizes, as in MovieLens); the
rest are shared in proportion to Lomax (Pareto II, shape 3) weights, a power-law tail, with
no user above ``ceil(n_items / 2)`` (ML-100K's busiest user rated 44 % of the catalogue; the
cap becomes the whole catalogue only when the request needs it). Shares are rounded by
largest remainders, so **the number of ratings is exactly** ``n_ratings``. At 10^5 the user
quantiles (10/50/90 %) are 26/67/222 ratings (ML-100K: 23/65/244).

Which items (popularity). Item weights follow a Zipf-Mandelbrot law
``w ∝ (rank + 0.45 n_items) ** -4.5`` (ranks shuffled over item ids), fitted to ML-100K's
item-count curve: at 10^5 the top 10 % of items hold 43 % of the ratings (ML-100K: 43 %), the
median item has 23 (27). A user's items are a weighted sample *without replacement*
(successive sampling: draw i.i.d. from ``w``, keep the first ``k_u`` distinct), so every
(user, item) pair is distinct. Items nobody drew are left out (their ids do not appear).

The rating. With a user bias ``b_u`` (sd 0.50), an item bias ``b_i`` (sd 0.60, correlation 0.4
with log popularity: popular films rate higher, as in MovieLens), both left-skewed (mirrored
Gumbel: a tail of bad films and harsh raters), and factors ``p_u, q_i ~ N(0, s^2 I)`` with
``s^2 = 0.70 / sqrt(rank)`` (so ``<p_u, q_i>`` has sd 0.70 whatever the rank)::

    clean = mu + b_u + b_i + <p_u, q_i>          mu = 3.33
    r     = clip(round_to_scale(clean + eps)),   eps ~ N(0, noise^2), noise = 0.6 by default

At 10^5 this gives mean 3.53, sd 1.12 and 1..5 shares of 5, 13, 28, 32, 22 % (ML-100K: 3.53,
1.13; 6, 11, 27, 34, 21 %); the mean creeps up with size (3.60 at 10^7) as popular, better
rated items take a larger share. For another scale ``low..high``, ``clean`` and ``eps`` are
mapped affinely from 1..5 onto ``low..high`` before rounding, so ``noise`` is always in 1..5
units and the histogram keeps its shape; ``step = 0`` gives continuous (clipped) ratings.

Choosing by taste (``taste``, default 0). With ``taste = 0`` the choice of items reads
popularity only, so *which* items a user rated says nothing about them: fine for rating
prediction, useless for implicit top-N (every model ties popularity). With ``taste > 0`` user
``u`` samples (without replacement, Gumbel top-k) from their own weights
``log w_i + taste * <p_u, q_i> / 0.70``: the odds of picking an item grow ``e^taste``-fold per
standard deviation of the user's affinity for it, as when people watch what they expect to
like. The ratings follow the same formula, so the choice raises them (selection bias, as in real
data): at 10^5 the mean is 3.53 at taste 0, 3.74 at 0.5, 3.91 at 1 (1..5 shares at 1: 2, 8,
22, 33, 35 %). It costs ``O(n_users x n_items)`` random draws; the data at ``taste = 0`` is
the same as without the option.

Timestamps (Unix seconds) are included: each user starts at a uniform time in 2000..2004 and
rates in draw order (popular items tend to come first) with exponential gaps of mean one day.

The noise floor
---------------
``noise_floor_rmse`` is the RMSE the Bayes-optimal predictor ``E[r | clean]`` gets on the
observed ratings: ``sqrt(mean over ratings of Var[r | clean])``, computed exactly from the
normal CDF over the rounding bins and the clipping (:func:`rating_moments`), not estimated.
No model can beat it in expectation. It is *not* always below ``noise``: rounding to levels
adds about ``step^2 / 12`` to the variance while clipping takes some off; on 1..5 with noise
0.6 it is about 0.61. On a continuous scale it is below ``noise`` (clipping only shrinks).
It is reported in ``Ratings.meta`` by :func:`synthetic_ratings`, and with the matrix by
:func:`synthetic_matrix_with_info` (a :class:`RatingMatrix` has no meta field) as
``SyntheticInfo.noise_floor_rmse``.

Reproducibility and memory
--------------------------
Randomness is drawn per *block* of consecutive users (about 2^16 ratings each) from a seed
derived from ``(seed, block)``; ``chunk_ratings`` only says how many ratings are generated in
one vectorised step, as whole blocks. So the same seed gives the same data, and the data does
not depend on ``chunk_ratings`` (tested). Peak memory is the final CSR (about 20 bytes a
rating with timestamps) plus one chunk's temporaries (about 100 bytes a rating) plus the
per-user and per-item parameters.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import ndtr

from aerec import _memory
from aerec.data.matrix import RatingMatrix
from aerec.data.ratings import Ratings
from aerec.data.scale import RatingScale
from aerec.data.vocab import Vocabulary
from aerec.errors import ConfigError

__all__ = [
    "SyntheticInfo",
    "noise_floor",
    "rating_moments",
    "synthetic_matrix",
    "synthetic_matrix_with_info",
    "synthetic_ratings",
    "synthetic_sizes",
    "toy_ratings",
]

# ----------------------------------------------------------------------------- toy
_TOY = """\
1 0 . 1 1 1
0 1 0 0 1 0
1 1 0 0 0 .
1 0 1 1 0 1
0 . 1 1 . 1
0 0 0 0 1 .
1 0 1 1 0 1
0 1 1 . 0 1
0 1 1 1 1 .
1 . 0 0 . 0
0 1 1 1 0 1"""


def toy_ratings() -> Ratings:
    """The like/dislike example (docs/architecture.md): 11 users x 6 movies, 57 observed cells.

    Users are labelled ``"User 1"`` .. ``"User 11"``, items ``"M1"`` .. ``"M6"``, the scale is
    ``RatingScale(0, 1, 1)``; a 0 (disliked) is a real rating, a blank (9 of them) is unrated.
    """
    users, items, values = [], [], []
    for u, line in enumerate(_TOY.splitlines(), start=1):
        for i, cell in enumerate(line.split(), start=1):
            if cell != ".":
                users.append(f"User {u}")
                items.append(f"M{i}")
                values.append(float(cell))
    r = Ratings.from_arrays(users, items, values, scale=RatingScale(0, 1, 1))  # validated
    return Ratings(r.frame, r.scale, "toy", meta={"description": "the course's 11 x 6 like/dislike example"})


# ----------------------------------------------------------------------------- model constants
FIVE_STARS = RatingScale(1, 5, 1)
"""The default scale of the synthetic ratings (MovieLens 100K/1M's)."""

# The reference scale is 1..5; see the module docstring for what each number means.
_MU = 3.33
_USER_BIAS_SD = 0.50
_ITEM_BIAS_SD = 0.60
_ITEM_BIAS_POP_CORR = 0.4
_INTERACTION_SD = 0.70
_ZIPF_EXPONENT = 4.5
_ZIPF_OFFSET = 0.45  # times n_items
_LOMAX_SHAPE = 3.0
_MAX_USER_SHARE = 0.5  # of the catalogue
_MAX_DENSITY = 0.3
_BLOCK_RATINGS = 1 << 16  # the unit of randomness: data never depends on the chunk size
_HEAVY_SHARE = 1 / 8  # users rating more than this share of the catalogue use Gumbel top-k
_T0, _T_SPAN, _GAP_MEAN = 946_684_800, 5 * 365 * 86_400, 86_400.0

# Purposes of the independent random streams (the second element of a SeedSequence spawn key).
_S_COUNTS, _S_ITEMS, _S_USERS, _S_SAMPLE, _S_NOISE, _S_TIME = range(6)


@dataclass(frozen=True)
class SyntheticInfo:
    """What :func:`synthetic_matrix_with_info` knows about the data it made.

    Attributes:
        noise_floor_rmse: RMSE of the Bayes-optimal predictor ``E[r | clean]`` on these ratings
            (in the scale's units); no model can do better in expectation.
        meta: JSON-ready facts: seed, rank, noise, sizes, scale, the model constants and the
            noise floor (the same dict :func:`synthetic_ratings` puts in ``Ratings.meta``).
    """

    noise_floor_rmse: float
    meta: dict[str, Any] = field(default_factory=dict)


def synthetic_sizes(
    n_ratings: int, n_users: int | None = None, n_items: int | None = None
) -> tuple[int, int]:
    """The default ``(n_users, n_items)`` for ``n_ratings`` (MovieLens-like; see the module doc)."""
    n = int(n_ratings)
    if n_users is None:
        n_users = max(round(n / 106), round(math.sqrt(n)), 1)
    if n_items is None:
        n_items = max(round(1682 * (n / 1e5) ** 0.6), 1)
        n_items = max(n_items, math.ceil(n / (_MAX_DENSITY * n_users)))
    return int(n_users), int(n_items)


# ----------------------------------------------------------------------------- the noise floor
def rating_moments(clean: np.ndarray, noise: float, scale: RatingScale) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``clip(round_to_scale(clean + eps))``, ``eps ~ N(0, noise^2)``.

    ``clean`` and ``noise`` are in the scale's own units. Exact, from the normal CDF: with
    levels ``low + j * step`` and bin edges half-way between them, ``r = low + step * J`` where
    ``J`` counts the edges that ``clean + eps`` exceeds, so ``E[J] = sum_k P_k`` and
    ``E[J^2] = sum_k (2k + 1) P_k`` with ``P_k = P(clean + eps > edge_k)``. A continuous scale
    (step 0) uses the censored-normal formulas. Returns float64 arrays shaped like ``clean``.
    """
    c = np.asarray(clean, dtype=np.float64)
    lo, hi = float(scale.low), float(scale.high)
    if noise == 0:
        r = _round_to_scale(c, scale)
        return r, np.zeros_like(c)
    if scale.step > 0:
        n_edges = len(scale.levels) - 1
        e1 = np.zeros_like(c)
        e2 = np.zeros_like(c)
        for k in range(n_edges):
            p = ndtr((c - (lo + (k + 0.5) * scale.step)) / noise)  # P(value above edge k)
            e1 += p
            e2 += (2 * k + 1) * p
        mean = lo + scale.step * e1
        var = scale.step**2 * (e2 - e1 * e1)
        return mean, np.maximum(var, 0.0)
    # Continuous: Y = clip(X, lo, hi), X ~ N(c, noise^2), a = (lo - c)/noise, b = (hi - c)/noise.
    a, b = (lo - c) / noise, (hi - c) / noise
    pa, pb = ndtr(a), ndtr(b)
    fa, fb = np.exp(-0.5 * a * a) / math.sqrt(2 * math.pi), np.exp(-0.5 * b * b) / math.sqrt(2 * math.pi)
    mid = pb - pa
    mean = lo * pa + hi * (1 - pb) + c * mid + noise * (fa - fb)
    second = (
        lo * lo * pa + hi * hi * (1 - pb) + (c * c + noise**2) * mid
        + 2 * c * noise * (fa - fb) + noise**2 * (a * fa - b * fb)
    )
    return mean, np.maximum(second - mean * mean, 0.0)


def noise_floor(clean: np.ndarray, noise: float, scale: RatingScale) -> float:
    """``sqrt(mean Var[r | clean])``: the Bayes-optimal RMSE for ratings with these clean values.

    ``noise`` in the scale's units (the generator's ``noise`` times ``(high - low) / 4``).
    """
    _, var = rating_moments(clean, noise, scale)
    return float(np.sqrt(var.mean())) if var.size else 0.0


def _round_to_scale(x: np.ndarray, scale: RatingScale) -> np.ndarray:
    """Nearest level, clipped into the scale (float64)."""
    if scale.step > 0:
        j = np.clip(np.round((x - scale.low) / scale.step), 0, len(scale.levels) - 1)
        return scale.low + scale.step * j
    return np.clip(x, scale.low, scale.high)


# ----------------------------------------------------------------------------- public generators
FRAME_BYTES_PER_RATING = 100  # peak of synthetic_ratings, measured at 10^7 ratings (949 MB)


def _check_memory(n_ratings: int) -> None:
    """Refuse a table that cannot fit, instead of letting the kernel kill the process (and
    perhaps its neighbours) half-way."""
    need, have = n_ratings * FRAME_BYTES_PER_RATING, _memory.available_memory()
    if have is not None and need > have:
        raise ConfigError(
            f"{n_ratings:,} synthetic ratings need about {need / 2**30:.1f} GiB while built, more than the "
            f"{have / 2**30:.1f} GiB of memory available; ask for fewer, or build the sparse matrix directly "
            "with synthetic_matrix, which needs a fraction of that"
        )


def synthetic_ratings(
    n_ratings: int = 100_000,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    rank: int = 8,
    noise: float = 0.6,
    scale: RatingScale = FIVE_STARS,
    seed: int = 0,
    chunk_ratings: int = 2_000_000,
    taste: float = 0.0,
) -> Ratings:
    """MovieLens-like explicit ratings from a known low-rank model (see the module docstring).

    Exactly ``n_ratings`` distinct (user, item) pairs; users and items are integer labels from
    1 (items nobody rated are absent). ``Ratings.meta`` holds ``noise_floor_rmse`` (the best RMSE
    any predictor can expect here), the seed, rank, noise and sizes. Same arguments, same data;
    ``chunk_ratings`` changes only memory use, never the data.
    Agrees with :func:`synthetic_matrix`: ``RatingMatrix.from_ratings`` of this is that matrix.
    """
    gen = _Generator(n_ratings, n_users, n_items, rank, noise, scale, seed, chunk_ratings, taste)
    _check_memory(gen.n_ratings)
    parts = list(gen.chunks())
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("user", "item", "rating", "timestamp")}
    frame = pd.DataFrame(
        {
            "user": cat["user"].astype(np.int64) + 1,
            "item": cat["item"].astype(np.int64) + 1,
            "rating": cat["rating"],
            "timestamp": cat["timestamp"],
        }
    )
    return Ratings(frame, gen.scale, gen.source, meta=gen.meta())


def synthetic_matrix_with_info(
    n_ratings: int = 100_000,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    rank: int = 8,
    noise: float = 0.6,
    scale: RatingScale = FIVE_STARS,
    seed: int = 0,
    chunk_ratings: int = 2_000_000,
    taste: float = 0.0,
) -> tuple[RatingMatrix, SyntheticInfo]:
    """:func:`synthetic_matrix` plus its :class:`SyntheticInfo` (the noise floor and meta).

    Builds the CSR chunk by chunk straight into preallocated arrays (never a DataFrame): the
    row lengths are known before any item is drawn, so each chunk's entries go to their final
    place. Memory is the result (float32 values, int32 indices, int64 timestamps) plus one
    chunk of temporaries.
    """
    gen = _Generator(n_ratings, n_users, n_items, rank, noise, scale, seed, chunk_ratings, taste)
    n = gen.n_ratings
    idx_dtype = np.int32 if max(gen.n_users, gen.n_items, n) < 2**31 else np.int64
    indptr = np.zeros(gen.n_users + 1, dtype=idx_dtype)
    np.cumsum(gen.counts, out=indptr[1:])
    indices = np.empty(n, dtype=idx_dtype)
    data = np.empty(n, dtype=np.float32)
    timestamps = np.empty(n, dtype=np.int64)
    for part in gen.chunks():
        lo = int(indptr[part["user_start"]])
        hi = lo + len(part["item"])
        indices[lo:hi] = part["item"]
        data[lo:hi] = part["rating"]
        timestamps[lo:hi] = part["timestamp"]
        del part
    # Drop items nobody rated, keeping id order, so the matrix equals from_ratings(...) of the
    # same data. Remapped in slices to avoid a second full-size index array.
    rated = gen.item_counts > 0
    new_col = (np.cumsum(rated) - 1).astype(idx_dtype)
    step = 1 << 22
    for s in range(0, n, step):
        indices[s : s + step] = new_col[indices[s : s + step]]
    csr = sp.csr_array((data, indices, indptr), shape=(gen.n_users, int(rated.sum())))
    csr.has_sorted_indices = True
    matrix = RatingMatrix(
        csr=csr,
        users=Vocabulary(np.arange(1, gen.n_users + 1, dtype=np.int64), name="user"),
        items=Vocabulary(np.flatnonzero(rated).astype(np.int64) + 1, name="item"),
        scale=gen.scale,
        timestamps=timestamps,
    )
    meta = gen.meta()
    return matrix, SyntheticInfo(meta["noise_floor_rmse"], meta)


def synthetic_matrix(
    n_ratings: int = 100_000,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    rank: int = 8,
    noise: float = 0.6,
    scale: RatingScale = FIVE_STARS,
    seed: int = 0,
    chunk_ratings: int = 2_000_000,
    taste: float = 0.0,
) -> RatingMatrix:
    """The :func:`synthetic_ratings` data as a :class:`RatingMatrix`, built with bounded memory.

    For 10^7..10^8 ratings. The noise floor is not on the matrix (it has no meta field): use
    :func:`synthetic_matrix_with_info` to get it too.
    """
    return synthetic_matrix_with_info(
        n_ratings, n_users=n_users, n_items=n_items, rank=rank, noise=noise, scale=scale,
        seed=seed, chunk_ratings=chunk_ratings, taste=taste,
    )[0]


# ----------------------------------------------------------------------------- the generator
def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent stream for ``(seed, *key)``: purposes and blocks never share draws."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=key))


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_number(name: str, value: Any, note: str = "") -> float:
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not numeric or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a finite number >= 0{note}; got {value!r}")
    return float(value)


class _Generator:
    """Holds the global parameters and yields the ratings chunk by chunk (see the module doc)."""

    def __init__(self, n_ratings, n_users, n_items, rank, noise, scale, seed, chunk_ratings, taste=0.0) -> None:
        self.n_ratings = _check_int("n_ratings", n_ratings, 1)
        if n_users is not None:
            _check_int("n_users", n_users, 1)
        if n_items is not None:
            _check_int("n_items", n_items, 1)
        self.rank = _check_int("rank", rank, 0)
        self.seed = _check_int("seed", seed, 0)
        self.chunk_ratings = _check_int("chunk_ratings", chunk_ratings, 1)
        noise = _check_number("noise", noise)
        if isinstance(scale, str):
            scale = RatingScale.parse(scale)  # "1:5:1", as typed on the command line
        if not isinstance(scale, RatingScale):
            raise ConfigError(f"scale must be a RatingScale or LOW:HIGH[:STEP]; got {scale!r}")
        self.noise, self.scale = noise, scale
        self.taste = _check_number("taste", taste, " (0: items chosen by popularity only)")
        self.n_users, self.n_items = synthetic_sizes(self.n_ratings, n_users, n_items)
        if self.n_ratings > self.n_users * self.n_items:
            raise ConfigError(
                f"n_ratings must be <= n_users * n_items (distinct pairs); got {self.n_ratings} > "
                f"{self.n_users} * {self.n_items}"
            )
        self.min_per_user = min(20, max(1, self.n_ratings // self.n_users // 5))
        # A dense request (more than half the catalogue on average) lifts the cap to the catalogue.
        cap = math.ceil(_MAX_USER_SHARE * self.n_items)
        self.max_per_user = cap if self.n_ratings <= cap * self.n_users else self.n_items
        self.counts = self._user_counts()  # (n_users,) int64, sums to n_ratings
        self._item_params()
        self.item_counts = np.zeros(self.n_items, dtype=np.int64)
        self._var_sums: list[float] = []  # per block, summed with fsum: chunk-independent
        self._rating_sums: list[float] = []
        starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        # Block b holds the users whose first rating falls in [b * B, (b + 1) * B).
        first = np.flatnonzero(np.diff(starts // _BLOCK_RATINGS, prepend=-1) != 0)
        self.block_first_user = first  # (n_blocks,) first user of each block
        self.block_bounds = np.append(first, self.n_users)
        taste_note = f", taste={self.taste:g}" if self.taste else ""
        self.source = f"synthetic(n_ratings={self.n_ratings}, seed={self.seed}{taste_note})"

    # ---- global parameters
    def _user_counts(self) -> np.ndarray:
        """Ratings per user: the minimum plus a capped, exact largest-remainder share."""
        n, U, m, cap = self.n_ratings, self.n_users, self.min_per_user, self.max_per_user
        weights = _rng(self.seed, _S_COUNTS).pareto(_LOMAX_SHAPE, U) + 1e-3  # Lomax
        extra = _capped_allocation(n - U * m, weights, cap - m)
        counts = m + extra
        assert counts.sum() == n and counts.max() <= self.n_items
        return counts

    def _item_params(self) -> None:
        I, r = self.n_items, self.rank
        g = _rng(self.seed, _S_ITEMS)
        ranks = g.permutation(I) + 1  # item id -> popularity rank (1 = most popular)
        log_w = -_ZIPF_EXPONENT * np.log(ranks + _ZIPF_OFFSET * I)
        self.log_w = log_w
        w = np.exp(log_w - log_w.max())
        self.alias_prob, self.alias = _alias_table(w)
        z = (log_w - log_w.mean()) / (log_w.std() or 1.0)
        rho = _ITEM_BIAS_POP_CORR
        self.item_bias = _ITEM_BIAS_SD * (rho * z + math.sqrt(1 - rho * rho) * _left_skewed(g, I))
        self.factor_sd = math.sqrt(_INTERACTION_SD / math.sqrt(r)) if r else 0.0
        self.item_factors = (self.factor_sd * g.standard_normal((I, r))).astype(np.float32)

    def meta(self) -> dict[str, Any]:
        floor = math.sqrt(math.fsum(self._var_sums) / self.n_ratings)
        return {
            "generator": "aerec.data.synthetic",
            "seed": self.seed,
            "rank": self.rank,
            "noise": self.noise,
            "taste": self.taste,
            "n_ratings": self.n_ratings,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_items_rated": int((self.item_counts > 0).sum()),
            "scale": self.scale.to_dict(),
            "noise_floor_rmse": floor,
            "mean_rating": math.fsum(self._rating_sums) / self.n_ratings,
            "model": {
                "mu": _MU, "user_bias_sd": _USER_BIAS_SD, "item_bias_sd": _ITEM_BIAS_SD,
                "item_bias_popularity_corr": _ITEM_BIAS_POP_CORR, "interaction_sd": _INTERACTION_SD,
                "zipf_exponent": _ZIPF_EXPONENT, "zipf_offset": _ZIPF_OFFSET,
                "lomax_shape": _LOMAX_SHAPE, "min_per_user": self.min_per_user,
                "max_per_user": self.max_per_user, "reference_scale": [1, 5],
            },
        }

    # ---- chunks
    def chunks(self, *, with_clean: bool = False) -> Iterator[dict[str, Any]]:
        """Yield runs of whole blocks of about ``chunk_ratings`` ratings, in CSR order.

        Each chunk: ``user_start`` (its first user), ``user`` (row index per rating, int32),
        ``item`` (column = item id - 1, int32, ascending within a row), ``rating`` (float32),
        ``timestamp`` (int64) and, with ``with_clean``, ``clean`` (float64, scale units).
        """
        self.item_counts[:] = 0  # totals are gathered afresh on each pass
        self._var_sums, self._rating_sums = [], []
        bounds = self.block_bounds
        block_sizes = np.add.reduceat(self.counts, bounds[:-1])
        b = 0
        while b < len(bounds) - 1:
            e, total = b + 1, int(block_sizes[b])
            while e < len(bounds) - 1 and total + block_sizes[e] <= self.chunk_ratings:
                total += int(block_sizes[e])
                e += 1
            yield self._chunk(b, e, with_clean)
            b = e

    def _chunk(self, b0: int, b1: int, with_clean: bool) -> dict[str, Any]:
        bounds = self.block_bounds
        u0, u1 = int(bounds[b0]), int(bounds[b1])
        k = self.counts[u0:u1]
        # The chunk's blocks, as chunk-local user ranges; each block seeds its own streams.
        local_bounds = bounds[b0 : b1 + 1] - u0
        blocks = [
            (int(self.block_first_user[b]), int(local_bounds[j]), int(local_bounds[j + 1]))
            for j, b in enumerate(range(b0, b1))
        ]  # (first user of the block = its seed key, chunk-local start, stop)
        n_users = u1 - u0

        # Per-user parameters, drawn per block (their own stream: drawing them before the
        # items changes nothing; with ``taste`` the item choice reads the factors).
        ubias = np.empty(n_users)
        ufac = np.empty((n_users, self.rank), dtype=np.float32)
        ustart = np.empty(n_users, dtype=np.int64)
        for first, lo, hi in blocks:
            g = _rng(self.seed, _S_USERS, first)
            ubias[lo:hi] = _USER_BIAS_SD * _left_skewed(g, hi - lo)
            ufac[lo:hi] = self.factor_sd * g.standard_normal((hi - lo, self.rank))
            ustart[lo:hi] = _T0 + g.integers(0, _T_SPAN, hi - lo)
        user, item, order = self._sample_items(k, blocks, ufac)  # user-major, draw order

        # Timestamps in draw order: start + cumulative whole-second gaps (exact integer sums,
        # so they do not depend on where a chunk starts).
        gaps = self._per_block_draws(
            blocks, k, _S_TIME, lambda g, n: g.exponential(_GAP_MEAN, n).astype(np.int64)
        )
        row_start = np.concatenate([[0], np.cumsum(k)[:-1]])
        csum = np.cumsum(gaps)
        before = np.repeat(csum[row_start] - gaps[row_start], k)  # the chunk's gaps before each row
        ts = np.repeat(ustart, k) + (csum - before)

        # CSR order: by user, then item. Everything after this is in CSR order.
        perm = np.argsort(user * self.n_items + item)  # keys are distinct: any sort will do
        user, item, ts = user[perm], item[perm], ts[perm]
        del order, perm, gaps, csum, before

        clean = self._clean(user, item, ubias, ufac)
        a = (self.scale.high - self.scale.low) / 4.0  # reference 1..5 -> the scale's units
        clean_t = self.scale.low + (clean - 1.0) * a
        del clean
        noise_t = self.noise * a
        eps = self._per_block_draws(blocks, k, _S_NOISE, lambda g, n: g.standard_normal(n))
        rating = _round_to_scale(clean_t + noise_t * eps, self.scale).astype(np.float32)
        del eps

        # Noise floor and mean: sums per block, so the totals do not depend on the chunking.
        _, var = rating_moments(clean_t, noise_t, self.scale)
        offsets = np.concatenate([[0], np.cumsum(np.add.reduceat(k, [lo for _, lo, _ in blocks]))[:-1]])
        self._var_sums.extend(np.add.reduceat(var, offsets).tolist())
        self._rating_sums.extend(np.add.reduceat(rating.astype(np.float64), offsets).tolist())
        del var
        self.item_counts += np.bincount(item, minlength=self.n_items)

        out = {
            "user_start": u0,
            "user": (user + u0).astype(np.int32 if self.n_users < 2**31 else np.int64),
            "item": item.astype(np.int32 if self.n_items < 2**31 else np.int64),
            "rating": rating,
            "timestamp": ts,
        }
        if with_clean:
            out["clean"] = clean_t
        return out

    def _per_block_draws(self, blocks, k: np.ndarray, purpose: int, draw) -> np.ndarray:
        """Concatenate ``draw(generator, n_ratings_of_block)`` over the blocks (rating order)."""
        return np.concatenate(
            [draw(_rng(self.seed, purpose, first), int(k[lo:hi].sum())) for first, lo, hi in blocks]
        )

    def _clean(self, user: np.ndarray, item: np.ndarray, ubias: np.ndarray, ufac: np.ndarray) -> np.ndarray:
        """``mu + b_u + b_i + <p_u, q_i>`` (float64, reference scale), one rank column at a time.

        Elementwise per column, so each rating's value is computed the same way whatever the
        chunk (a row-wise reduction could change with memory layout).
        """
        out = _MU + ubias[user] + self.item_bias[item]
        for c in range(self.rank):
            out += ufac[user, c].astype(np.float64) * self.item_factors[item, c]
        return out

    # ---- which items each user rates
    def _sample_items(
        self, k: np.ndarray, blocks, ufac: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each chunk-local user ``u`` gets ``k[u]`` distinct items by successive sampling.

        Light users draw i.i.d. from the popularity weights and keep the first ``k`` distinct
        (redrawing for those still short); heavy users (over ``_HEAVY_SHARE`` of the catalogue,
        where that would need many redraws) take the top ``k`` of ``log w + Gumbel``, which is
        the same distribution. With ``taste > 0`` every user takes the Gumbel top ``k`` of
        their own weights ``log w + taste * <p_u, q_i> / 0.70`` (``ufac``: the chunk's
        ``(users, rank)`` factors ``p_u``). Returns user-major ``(user, item, order)`` with
        ``order`` the position in the user's draw sequence (0..k-1).
        """
        I = self.n_items
        by_taste = self.taste > 0 and self.rank > 0  # then every user's weights are their own
        heavy = k > max(_HEAVY_SHARE * I, 1) if not by_taste else np.ones(len(k), dtype=bool)
        gens = {first: _rng(self.seed, _S_SAMPLE, first) for first, _, _ in blocks}
        block_of = np.repeat(np.arange(len(blocks)), [hi - lo for _, lo, hi in blocks])

        # Light users, first round: m draws each, enough for k distinct most of the time.
        light = np.flatnonzero(~heavy)
        m = k[light] + np.ceil(0.25 * k[light]).astype(np.int64) + 4
        users_d, items_d = self._draw(light, m, block_of, blocks, gens)
        kept_u, kept_i, short = _first_distinct(users_d, items_d, k, I)
        pending = np.isin(kept_u, short)
        parts_u, parts_i = [kept_u[~pending]], [kept_i[~pending]]
        pend_u, pend_i = kept_u[pending], kept_i[pending]

        # Heavy users: Gumbel top-k, a few users at a time to bound the (users, items) keys.
        heavy_u = np.flatnonzero(heavy)
        hu, hi_ = [], []
        per = max(1, (1 << 21) // I)
        for j, (first, lo, hi) in enumerate(blocks):
            hs = heavy_u[(heavy_u >= lo) & (heavy_u < hi)]
            for s in range(0, len(hs), per):
                us = hs[s : s + per]
                keys = self.log_w[None, :] + gens[first].gumbel(size=(len(us), I))  # (users, I)
                if by_taste:
                    # Standardised affinity: <p_u, q_i> has sd _INTERACTION_SD on the reference scale.
                    affinity = ufac[us].astype(np.float64) @ self.item_factors.T.astype(np.float64)
                    keys += (self.taste / _INTERACTION_SD) * affinity
                for row, u in enumerate(us):  # the k largest keys, largest first (draw order)
                    best = np.argpartition(-keys[row], k[u] - 1)[: k[u]] if k[u] < I else np.arange(I)
                    hu.append(np.full(k[u], u, dtype=np.int64))
                    hi_.append(best[np.argsort(-keys[row, best], kind="stable")].astype(np.int64))

        # Redraw rounds for light users still short, continuing each block's stream.
        while len(short):
            have = np.bincount(pend_u, minlength=len(k))[short]
            extra = 2 * (k[short] - have) + 8
            new_u, new_i = self._draw(short, extra, block_of, blocks, gens)
            # Old distinct items first, then the new draws, per user (a stable sort by user).
            cu, ci = np.concatenate([pend_u, new_u]), np.concatenate([pend_i, new_i])
            srt = np.argsort(cu, kind="stable")
            kept_u, kept_i, short = _first_distinct(cu[srt], ci[srt], k, I)
            done = ~np.isin(kept_u, short)
            parts_u.append(kept_u[done])
            parts_i.append(kept_i[done])
            pend_u, pend_i = kept_u[~done], kept_i[~done]

        user = np.concatenate(parts_u + hu)
        item = np.concatenate(parts_i + hi_)
        # Restore user-major order with draw order inside each user (the parts are each in it).
        srt = np.argsort(user, kind="stable")
        user, item = user[srt], item[srt]
        starts = np.concatenate([[0], np.cumsum(k)[:-1]])
        order = np.arange(len(user)) - np.repeat(starts, k)
        assert len(user) == k.sum()
        return user, item, order

    def _draw(
        self, users: np.ndarray, m: np.ndarray, block_of: np.ndarray, blocks, gens
    ) -> tuple[np.ndarray, np.ndarray]:
        """``m[j]`` popularity draws for each of ``users`` (ascending), from their blocks' streams."""
        per_block = np.bincount(block_of[users], weights=m, minlength=len(blocks)).astype(np.int64)
        uni = np.concatenate(
            [gens[first].random(int(per_block[j])) for j, (first, _, _) in enumerate(blocks)]
        )
        # Walker's alias method: one uniform picks a column j and, by its fraction, j or alias[j].
        x = uni * self.n_items
        j = np.minimum(x.astype(np.int64), self.n_items - 1)
        items = np.where(x - j < self.alias_prob[j], j, self.alias[j])
        return np.repeat(users, m), items


def _alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias table for sampling index ``i`` with probability ``weights[i] / sum``.

    Column ``j`` (chosen uniformly) yields ``j`` with probability ``prob[j]``, else ``alias[j]``.
    O(n) with a Python loop (about 0.1 s for 10^5 items), built once per data set.
    """
    n = len(weights)
    p = (weights / weights.sum() * n).tolist()
    prob = np.ones(n)
    alias = np.arange(n, dtype=np.int64)
    small = [i for i, v in enumerate(p) if v < 1.0]
    large = [i for i, v in enumerate(p) if v >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = p[s], g
        p[g] += p[s] - 1.0
        (small if p[g] < 1.0 else large).append(g)
    # Whatever is left (rounding) keeps probability 1: it always yields itself.
    return prob, alias


def _left_skewed(g: np.random.Generator, n: int) -> np.ndarray:
    """Mean 0, sd 1, skewness -1.14 (a mirrored Gumbel): a long tail of bad films and harsh raters."""
    return (np.euler_gamma - g.gumbel(size=n)) / (math.pi / math.sqrt(6))


def _first_distinct(
    user: np.ndarray, item: np.ndarray, k: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per user (``user`` ascending, draws in order), the first ``k[u]`` distinct items.

    Returns the kept ``(user, item)`` in user-major draw order, and the users with fewer than
    ``k[u]`` distinct items so far (all their distinct items are kept, for the next round).
    """
    key = user * n_items + item
    srt = np.argsort(key, kind="stable")  # equal keys keep draw order: the first comes first
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[srt][1:] != key[srt][:-1]
    pos = np.sort(srt[first])  # first occurrences, back in (user, draw) order
    u, i = user[pos], item[pos]
    counts = np.bincount(u, minlength=len(k))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(u)) - np.repeat(starts, counts)
    keep = rank < k[u]
    present = np.flatnonzero(counts)
    short = present[counts[present] < k[present]]
    return u[keep], i[keep], short


def _capped_allocation(total: int, weights: np.ndarray, cap: int) -> np.ndarray:
    """Integers ``x`` with ``sum(x) == total``, ``0 <= x <= cap``, ``x`` about proportional to ``weights``.

    Water-filling: users whose share exceeds ``cap`` are pinned there and the rest is shared
    again; then floors plus the largest remainders (ties by index) make the sum exact.
    """
    n = len(weights)
    if total <= 0:
        return np.zeros(n, dtype=np.int64)
    x = np.zeros(n)
    free = np.ones(n, dtype=bool)
    left = float(total)
    while free.any():
        share = left * weights / weights[free].sum()
        over = free & (share > cap)
        if not over.any():
            x[free] = share[free]
            break
        x[over] = cap
        free &= ~over
        left = total - cap * (~free).sum()
    out = np.floor(x).astype(np.int64)
    short = int(total - out.sum())
    if short:
        rem = np.where(out < cap, x - out, -1.0)
        out[np.argsort(-rem, kind="stable")[:short]] += 1
    return out
