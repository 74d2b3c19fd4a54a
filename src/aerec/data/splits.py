"""Seeded, reproducible train / test (/ validation) splits of a :class:`Ratings` table.

Every splitter takes a validated :class:`Ratings` and returns a :class:`Split` whose parts are
row subsets of the input: labels, ratings, timestamps and the frame index (the 1-based line
numbers of the source file) are kept, so a later complaint can still name a line. Each part
keeps the input's row order. The parts partition the input exactly: every row lands in exactly
one part.

The protocols they serve (docs/evaluation.md):

===================  ==============================================================
``canonical_split``  MovieLens 100K ``u1..u5`` / ``ua`` / ``ub`` files (course, GC-MC, IGMC,
                     GLocal-K); ``canonical_folds`` gives ``u1..u5`` as 5-fold CV.
``random_split``     random hold-out by rating, e.g. 90/10 repeated with seeds (AutoRec,
                     Sparse FC, GLocal-K on ML-1M).
``kfold``            K-fold cross-validation by rating.
``per_user_split``   a fraction of each user's ratings, or leave-k-out, held out per user.
``user_split``       strong generalization (Mult-VAE): whole users go to test / validation;
                     ``fold_in_split`` then divides each held-out user's ratings.
``temporal_split``   a global time cut (e.g. Netflix as in DeepRec).
``last_k_split``     each user's last k ratings by time (next-item style hold-out).
``validation_split`` a seeded validation part carved from training data, for model
                     selection and early stopping (never the test file).
===================  ==============================================================

Randomness: every random choice comes from ``np.random.default_rng(seed)``; the same input
(same rows in the same order) and the same seed give identical splits. Everything is
vectorised (one sort, no Python loop per user), so 10^7 ratings split in seconds.

Rounding: "a fraction f of n" is ``floor(f * n + 0.5)`` (round half up), the same everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd

from aerec.data.matrix import RatingMatrix
from aerec.data.ratings import Ratings
from aerec.data.readers import read_ratings
from aerec.data.vocab import Vocabulary
from aerec.errors import ConfigError, DataError

__all__ = [
    "CANONICAL_NAMES",
    "SPEC_FORMS",
    "Split",
    "canonical_folds",
    "canonical_split",
    "fold_in_split",
    "kfold",
    "last_k_split",
    "parse_split",
    "per_user_split",
    "random_split",
    "temporal_split",
    "user_split",
    "validation_split",
]

CANONICAL_NAMES = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
"""The MovieLens 100K split files: ``uN.base`` / ``uN.test``."""

ValidationBy = Literal["rating", "user"]


# ====================================================================== the Split
@dataclass(frozen=True, eq=False)
class Split:
    """A train / test (/ validation) partition of one ratings table.

    Attributes:
        train, test: the parts (row subsets of the input, input order, line numbers kept).
        validation: an optional part for model selection, carved from the training data.
        name: the split's spec (e.g. ``"random:0.1:seed=3"``, ``"u1"``), used in reports.
        meta: the protocol's parameters (kind, seed, ...); ``user_split`` records its
            ``fold_in_fraction`` here for :meth:`fold_in`.
    """

    train: Ratings
    test: Ratings
    validation: Ratings | None = None
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def parts(self) -> tuple[Ratings, ...]:
        """``(train, test)`` or ``(train, test, validation)``."""
        base = (self.train, self.test)
        return base if self.validation is None else (*base, self.validation)

    def vocabularies(self) -> tuple[Vocabulary, Vocabulary]:
        """User and item vocabularies over the union of the labels of all parts."""
        users = np.concatenate([p.frame["user"].to_numpy() for p in self.parts])
        items = np.concatenate([p.frame["item"].to_numpy() for p in self.parts])
        return Vocabulary.from_values(users, name="user"), Vocabulary.from_values(items, name="item")

    def matrices(self) -> tuple[RatingMatrix, ...]:
        """The parts as :class:`RatingMatrix` objects over *shared* vocabularies.

        Returns ``(train, test)`` or ``(train, test, validation)``; all have the same shape
        ``(n_users, n_items)`` where the users and items are the union of every part's labels
        (for the canonical ML-100K ``u1`` split: 943 x 1682), so row ``i`` is the same user
        in each and a test cell can be looked up in the training matrix's coordinates.
        """
        users, items = self.vocabularies()
        return tuple(RatingMatrix.from_ratings(p, users=users, items=items) for p in self.parts)

    def with_validation(
        self, fraction: float = 0.1, seed: int = 0, by: ValidationBy = "rating"
    ) -> Split:
        """This split with a validation part carved from ``train`` (see :func:`validation_split`)."""
        if self.validation is not None:
            raise DataError(
                f"split {self.name or '<unnamed>'} already has a validation part",
                fix="carve the validation part once",
            )
        train, validation = validation_split(self.train, fraction, seed=seed, by=by)
        meta = {**self.meta, "validation": {"fraction": fraction, "seed": seed, "by": by}}
        return replace(self, train=train, validation=validation, meta=meta)

    def fold_in(
        self, part: Literal["test", "validation"] = "test", *, seed: int | None = None
    ) -> tuple[Ratings, Ratings]:
        """``(fold_in, held_out)`` of the held-out users of a :func:`user_split` (Mult-VAE protocol).

        Uses the ``fold_in_fraction`` and ``seed`` that :func:`user_split` recorded in
        :attr:`meta` (``seed`` overrides it).
        """
        fraction = self.meta.get("fold_in_fraction")
        if fraction is None:
            raise DataError(
                f"split {self.name or '<unnamed>'} has no fold-in fraction",
                fix="make it with user_split(..., fold_in_fraction=0.8) or call fold_in_split directly",
            )
        ratings = self.test if part == "test" else self.validation
        if ratings is None:
            raise DataError(
                f"split {self.name or '<unnamed>'} has no {part} part", fix="ask for part='test'"
            )
        return fold_in_split(ratings, fraction, seed=self.meta.get("seed", 0) if seed is None else seed)

    def summary(self) -> dict[str, Any]:
        """Sizes of the parts, JSON-ready."""
        out: dict[str, Any] = {"name": self.name}
        for label, part in zip(("train", "test", "validation"), self.parts):
            out[label] = {"ratings": len(part), "users": part.n_users, "items": part.n_items}
        return out


# ====================================================================== argument checks
def _check_fraction(value: Any, what: str, *, allow_zero: bool = False) -> float:
    """A fraction in (0, 1) ([0, 1) with ``allow_zero``), else ConfigError naming ``what``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    low_ok = ok and (value >= 0 if allow_zero else value > 0)
    if not (ok and low_ok and value < 1 and math.isfinite(value)):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"{what} must be a fraction in {interval}; got {value!r}")
    return float(value)


def _check_count(value: Any, what: str, *, minimum: int = 1) -> int:
    """An integer >= ``minimum``, else ConfigError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_seed(seed: Any) -> int:
    # None would draw fresh OS entropy: never reproducible, so it is refused.
    return _check_count(seed, "seed", minimum=0)


def _round_half_up(x: np.ndarray | float) -> np.ndarray:
    # The epsilon keeps e.g. 0.2 * 5 = 0.9999999999999998 (for 1 - 0.8) from rounding the wrong way.
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5 + 1e-9).astype(np.int64)


def _need_timestamps(ratings: Ratings, what: str) -> np.ndarray:
    if not ratings.has_timestamps:
        raise DataError(
            f"{what} needs timestamps, but {ratings.source} has none",
            fix="use ratings with a timestamp column, or a random split (random:F, peruser:F)",
        )
    return ratings.frame["timestamp"].to_numpy(dtype=np.int64)


def _make(ratings: Ratings, test: np.ndarray, name: str, meta: dict[str, Any]) -> Split:
    """A Split from a boolean test mask, refusing an empty train or test part."""
    n_test = int(test.sum())
    if n_test == 0 or n_test == len(test):
        empty = "test" if n_test == 0 else "train"
        raise DataError(
            f"split {name} of {len(test)} rating(s) leaves the {empty} part empty",
            value=f"{len(ratings)} ratings, {ratings.n_users} users", has_value=True,
            fix="use more data or a larger/smaller hold-out",
        )
    return Split(ratings.subset(~test), ratings.subset(test), name=name, meta=meta)


# ====================================================================== per-user machinery
def _user_codes(ratings: Ratings) -> tuple[np.ndarray, int]:
    """Each row's user as a code 0..n_users-1 (codes follow the sorted labels), and n_users."""
    codes, uniques = pd.factorize(ratings.frame["user"], sort=True)
    return codes.astype(np.int64, copy=False), len(uniques)


def _ranks(codes: np.ndarray, n_groups: int, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row rank within its user, given ``order`` = rows sorted by user code first.

    Returns ``rank`` (n_rows,) with 0 for the user's first row in ``order``, and the per-user
    ``counts`` (n_groups,).
    """
    counts = np.bincount(codes, minlength=n_groups).astype(np.int64)
    starts = np.cumsum(counts) - counts
    rank = np.empty(len(codes), dtype=np.int64)
    # order is grouped by user in code order, so position - start of that user's block = rank
    rank[order] = np.arange(len(codes), dtype=np.int64) - np.repeat(starts, counts)
    return rank, counts


def _random_ranks(
    codes: np.ndarray, n_groups: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A uniformly random order of each user's rows, as ranks (see :func:`_ranks`)."""
    perm = rng.permutation(len(codes))
    order = perm[np.argsort(codes[perm], kind="stable")]  # grouped by user, shuffled within
    return _ranks(codes, n_groups, order)


def _per_user_counts(
    counts: np.ndarray, *, fraction: float | None, k: int | None, min_train: int
) -> np.ndarray:
    """How many of each user's ratings to hold out: all-or-nothing with respect to ``min_train``.

    A user whose hold-out would leave fewer than ``min_train`` training ratings keeps all of
    them in train (rather than a smaller hold-out), so leave-k-out always holds out exactly k.
    """
    n = np.full_like(counts, k) if k is not None else _round_half_up(counts * fraction)
    return np.where(counts - n >= min_train, n, 0)


def _per_user_mask(
    ratings: Ratings, *, fraction: float | None, k: int | None, min_train: int, seed: int
) -> np.ndarray:
    """Boolean test mask of a random per-user hold-out (see :func:`_per_user_counts`)."""
    codes, n_users = _user_codes(ratings)
    rank, counts = _random_ranks(codes, n_users, np.random.default_rng(seed))
    n_test = _per_user_counts(counts, fraction=fraction, k=k, min_train=min_train)
    return rank < n_test[codes]


# ====================================================================== canonical files
def _canonical_folder(source: str | Path) -> Path:
    path = Path(source).expanduser()
    return path.parent if path.is_file() else path


def canonical_split(source: str | Path, name: str = "u1") -> Split:
    """The MovieLens 100K split ``name`` read from ``source/name.base`` and ``source/name.test``.

    Protocol: the canonical ML-100K split (docs/evaluation.md). ``u1``..``u5`` are the 80/20 folds of
    5-fold CV (disjoint test sets covering ``u.data``); ``ua`` / ``ub`` hold out exactly 10
    ratings per user. ``source`` is the ``ml-100k`` folder (or a file inside it). The parts keep
    the files' line numbers and the ``u.item`` titles the reader attaches.

    Raises:
        ConfigError: ``name`` is not one of :data:`CANONICAL_NAMES`.
        DataError: a split file is missing (the message names it).
    """
    key = str(name).strip().lower()
    if key not in CANONICAL_NAMES:
        raise ConfigError(f"unknown canonical split {name!r}; use one of {', '.join(CANONICAL_NAMES)}")
    folder = _canonical_folder(source)
    files = [folder / f"{key}.base", folder / f"{key}.test"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataError(
            f"canonical split {key} needs {' and '.join(missing)}, "
            f"which {'is' if len(missing) == 1 else 'are'} missing",
            path=str(folder),
            fix="point to the ml-100k folder (aerec datasets download ml-100k), or use a random split",
        )
    train, test = (read_ratings(f) for f in files)
    return Split(train, test, name=key, meta={"kind": "canonical", "folder": str(folder)})


def canonical_folds(source: str | Path) -> list[Split]:
    """``u1``..``u5``: MovieLens 100K 5-fold cross-validation (docs/evaluation.md)."""
    return [canonical_split(source, f"u{i}") for i in range(1, 6)]


# ====================================================================== by rating
def random_split(ratings: Ratings, test_fraction: float = 0.2, *, seed: int = 0) -> Split:
    """Hold out ``round(test_fraction * n)`` ratings drawn uniformly at random.

    Protocol: random hold-out by rating, e.g. the 90/10 split repeated with seeds of AutoRec,
    Sparse FC and GLocal-K on ML-1M (docs/evaluation.md). Users or items may appear only in test; the
    evaluation's fallback counts them.
    """
    f = _check_fraction(test_fraction, "test_fraction")
    seed = _check_seed(seed)
    n = len(ratings)
    n_test = int(_round_half_up(f * n))
    test = np.zeros(n, dtype=bool)
    test[np.random.default_rng(seed).permutation(n)[:n_test]] = True
    meta = {"kind": "random", "test_fraction": f, "seed": seed}
    return _make(ratings, test, f"random:{f:g}:seed={seed}", meta)


def _folds(ratings: Ratings, k: int, seed: int) -> tuple[np.ndarray, int, int]:
    """Fold number (0..k-1) of each row: a random permutation dealt round-robin; checked k, seed."""
    k = _check_count(k, "k", minimum=2)
    seed = _check_seed(seed)
    n = len(ratings)
    if k > n:
        raise DataError(
            f"{k}-fold cross-validation needs at least {k} ratings", value=n, fix="use a smaller k"
        )
    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n, dtype=np.int64) % k
    return fold, k, seed


def _kfold_split(ratings: Ratings, fold: np.ndarray, k: int, i: int, seed: int) -> Split:
    meta = {"kind": "kfold", "k": k, "fold": i, "seed": seed}
    return _make(ratings, fold == i, f"kfold:{k}:{i}:seed={seed}", meta)


def kfold(ratings: Ratings, k: int = 5, *, seed: int = 0) -> list[Split]:
    """K-fold cross-validation by rating: every rating is in exactly one of the k test folds.

    Fold sizes differ by at most one. Protocol: K-fold CV by rating (docs/evaluation.md; the random
    counterpart of ML-100K's ``u1..u5``).
    """
    fold, k, seed = _folds(ratings, k, seed)
    return [_kfold_split(ratings, fold, k, i, seed) for i in range(k)]


def _kfold_one(ratings: Ratings, k: int, index: int, *, seed: int = 0) -> Split:
    """Fold ``index`` (0-based) of :func:`kfold` without building the others."""
    fold, k, seed = _folds(ratings, k, seed)
    if not 0 <= index < k:
        raise ConfigError(f"fold index must be in 0..{k - 1}; got {index}")
    return _kfold_split(ratings, fold, k, index, seed)


# ====================================================================== by user
def per_user_split(
    ratings: Ratings,
    *,
    test_fraction: float | None = None,
    leave_k: int | None = None,
    seed: int = 0,
    min_train: int = 1,
) -> Split:
    """Hold out part of *each* user's ratings, chosen at random: every user stays in train.

    Give exactly one of ``test_fraction`` (``round(f * n_u)`` of a user's ``n_u`` ratings) or
    ``leave_k`` (k of them: leave-one-out with ``leave_k=1``). A user whose hold-out would leave
    fewer than ``min_train`` training ratings keeps all ratings in train. Protocol: per-user
    (stratified) hold-out, weak generalization (docs/evaluation.md).
    """
    if (test_fraction is None) == (leave_k is None):
        raise ConfigError("per_user_split needs exactly one of test_fraction or leave_k")
    f = _check_fraction(test_fraction, "test_fraction") if test_fraction is not None else None
    k = _check_count(leave_k, "leave_k") if leave_k is not None else None
    min_train = _check_count(min_train, "min_train")
    seed = _check_seed(seed)
    test = _per_user_mask(ratings, fraction=f, k=k, min_train=min_train, seed=seed)
    name = f"peruser:{f:g}" if f is not None else f"leave:{k}"
    meta = {"kind": "peruser", "test_fraction": f, "leave_k": k, "min_train": min_train, "seed": seed}
    return _make(ratings, test, f"{name}:seed={seed}", meta)


def _user_count(value: Any, n_users: int, what: str, *, allow_zero: bool) -> int:
    """``value`` users: a fraction of ``n_users`` (float) or a number (int)."""
    if isinstance(value, (float, np.floating)):
        return int(_round_half_up(_check_fraction(value, what, allow_zero=allow_zero) * n_users))
    return _check_count(value, what, minimum=0 if allow_zero else 1)


def user_split(
    ratings: Ratings,
    *,
    test_users: float | int = 0.1,
    validation_users: float | int = 0.0,
    seed: int = 0,
    fold_in_fraction: float | None = None,
) -> Split:
    """Strong generalization: whole users go to test (and validation); none crosses a boundary.

    ``test_users`` / ``validation_users`` are a fraction of the users (float) or a number of
    users (int). Users are drawn at random (over the sorted user labels, so the draw does not
    depend on row order). Protocol: Mult-VAE's implicit top-N evaluation (docs/evaluation.md). The
    fold-in / held-out division of each held-out user's ratings is a separate step:
    :func:`fold_in_split`, or :meth:`Split.fold_in` with the ``fold_in_fraction`` recorded here.
    """
    seed = _check_seed(seed)
    if fold_in_fraction is not None:
        fold_in_fraction = _check_fraction(fold_in_fraction, "fold_in_fraction")
    codes, n_users = _user_codes(ratings)
    n_test = _user_count(test_users, n_users, "test_users", allow_zero=False)
    n_val = _user_count(validation_users, n_users, "validation_users", allow_zero=True)
    if n_test < 1 or n_test + n_val >= n_users:
        raise DataError(
            f"user_split with {n_test} test and {n_val} validation user(s) needs at least "
            f"{max(n_test, 1) + n_val + 1} users (one left to train on)",
            value=n_users, fix="use fewer held-out users or more data",
        )
    # part of each user: 0 train, 1 test, 2 validation
    part_of_user = np.zeros(n_users, dtype=np.int8)
    drawn = np.random.default_rng(seed).permutation(n_users)
    part_of_user[drawn[:n_test]] = 1
    part_of_user[drawn[n_test:n_test + n_val]] = 2
    part = part_of_user[codes]
    name = f"user:{test_users:g}" + (f":val={validation_users:g}" if n_val else "") + f":seed={seed}"
    meta = {
        "kind": "user", "test_users": n_test, "validation_users": n_val, "seed": seed,
        "fold_in_fraction": fold_in_fraction,
    }
    return Split(
        ratings.subset(part == 0),
        ratings.subset(part == 1),
        ratings.subset(part == 2) if n_val else None,
        name=name,
        meta=meta,
    )


def fold_in_split(ratings: Ratings, fraction: float = 0.8, *, seed: int = 0) -> tuple[Ratings, Ratings]:
    """Divide each user's ratings into ``(fold_in, held_out)`` at random.

    About ``fraction`` of each user's ratings are folded in (given to the model as input); the
    other ``round((1 - fraction) * n_u)`` are held out and ranked. A user with a single rating
    keeps it in fold-in. Protocol: the fold-in step of Mult-VAE's strong generalization for
    the users :func:`user_split` held out (docs/evaluation.md).
    """
    f = _check_fraction(fraction, "fraction")
    seed = _check_seed(seed)
    held = _per_user_mask(ratings, fraction=1.0 - f, k=None, min_train=1, seed=seed)
    return ratings.subset(~held), ratings.subset(held)


# ====================================================================== by time
def temporal_split(
    ratings: Ratings, *, cutoff: int | None = None, test_fraction: float | None = None
) -> Split:
    """A global time cut: test is everything after, train everything before.

    Give exactly one of ``cutoff`` (a timestamp: train ``< cutoff`` <= test) or
    ``test_fraction`` (the latest ``round(f * n)`` ratings go to test; ties in time are broken by
    row order). Either way every train timestamp is <= every test timestamp. Protocol: time-based
    hold-out, e.g. the Netflix split of DeepRec (docs/evaluation.md). Needs timestamps.
    """
    if (cutoff is None) == (test_fraction is None):
        raise ConfigError("temporal_split needs exactly one of cutoff or test_fraction")
    ts = _need_timestamps(ratings, "a temporal split")
    if cutoff is not None:
        if isinstance(cutoff, bool) or not isinstance(cutoff, (int, np.integer)):
            raise ConfigError(f"cutoff must be an integer timestamp; got {cutoff!r}")
        test = ts >= cutoff
        meta = {"kind": "temporal", "cutoff": int(cutoff)}
        return _make(ratings, test, f"temporal:cutoff={int(cutoff)}", meta)
    f = _check_fraction(test_fraction, "test_fraction")
    n_test = int(_round_half_up(f * len(ts)))
    order = np.argsort(ts, kind="stable")  # by time, then row order
    test = np.zeros(len(ts), dtype=bool)
    test[order[len(ts) - n_test:]] = True
    return _make(ratings, test, f"temporal:{f:g}", {"kind": "temporal", "test_fraction": f})


def last_k_split(ratings: Ratings, k: int = 1, *, min_train: int = 1) -> Split:
    """Each user's last ``k`` ratings by time go to test (ties: the later row counts as later).

    A user with fewer than ``k + min_train`` ratings keeps all in train. Per user, every train
    timestamp is <= every test timestamp. Protocol: per-user temporal leave-k-out (docs/evaluation.md).
    Needs timestamps; deterministic (no seed).
    """
    k = _check_count(k, "k")
    min_train = _check_count(min_train, "min_train")
    ts = _need_timestamps(ratings, "a last-k split")
    codes, n_users = _user_codes(ratings)
    # by user, then time, then row order: two stable sorts (faster than a 3-key lexsort)
    order = np.argsort(ts, kind="stable")
    order = order[np.argsort(codes[order], kind="stable")]
    rank, counts = _ranks(codes, n_users, order)
    from_end = counts[codes] - 1 - rank  # 0 = the user's latest rating
    n_test = _per_user_counts(counts, fraction=None, k=k, min_train=min_train)
    test = from_end < n_test[codes]
    return _make(ratings, test, f"lastk:{k}", {"kind": "lastk", "k": k, "min_train": min_train})


# ====================================================================== validation
def validation_split(
    train: Ratings, fraction: float = 0.1, *, seed: int = 0, by: ValidationBy = "rating"
) -> tuple[Ratings, Ratings]:
    """Carve a seeded validation part from training data: returns ``(train, validation)``.

    ``by="rating"``: ``round(fraction * n)`` ratings at random; ``by="user"``: ``fraction`` of
    each user's ratings, so every user keeps training ratings (a user with a single rating keeps
    it). For whole held-out validation *users* use ``user_split(validation_users=...)``.
    Protocol: model selection and early stopping on data carved from training, never the test
    file (docs/evaluation.md).
    """
    if by == "rating":
        s = random_split(train, fraction, seed=seed)
    elif by == "user":
        s = per_user_split(train, test_fraction=fraction, seed=seed)
    else:
        raise ConfigError(f"validation by must be 'rating' or 'user'; got {by!r}")
    return s.train, s.test


# ====================================================================== CLI specs
SPEC_FORMS = (
    "u1..u5, ua, ub                    the MovieLens 100K split files (next to the data)",
    "random:F[:seed=S]                 hold out a fraction F of the ratings at random",
    "kfold:K:I[:seed=S]                fold I (0..K-1) of K-fold cross-validation",
    "user:F|N[:val=F|N][:seed=S]       whole users to test (and validation)",
    "peruser:F[:seed=S][:min_train=M]  a fraction F of each user's ratings",
    "leave:K[:seed=S][:min_train=M]    K random ratings of each user (leave-K-out)",
    "temporal:F | temporal:cutoff=T    the latest fraction F of ratings / those at or after T",
    "lastk:K[:min_train=M]             each user's K latest ratings",
)


def _bad_spec(spec: str, why: str) -> ConfigError:
    forms = "\n  ".join(SPEC_FORMS)
    return ConfigError(f"bad split spec {spec!r}: {why}. Valid forms:\n  {forms}")


def _num(spec: str, text: str, what: str, kind: type) -> Any:
    try:
        if kind is int:
            return int(text)
        value = float(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise _bad_spec(spec, f"{what} {text!r} is not {expected}") from None
    return value


def _spec_fields(text: str) -> tuple[str, list[str], dict[str, str]]:
    """``"user:100:val=100"`` -> ``("user", ["100"], {"val": "100"})``: the kind, its values, its options."""
    kind, *rest = text.split(":")
    args = [r for r in rest if "=" not in r]
    opts: dict[str, str] = {}
    for r in rest:
        if "=" in r:
            key, _, value = r.partition("=")
            opts[key.strip().lower()] = value.strip()
    if any(a.strip() == "" for a in args):
        raise _bad_spec(text, "empty field")
    return kind.lower(), args, opts


def _check_fields(text: str, kind: str, args: list[str], opts: dict[str, str], allowed: tuple[str, ...],
                  n_args: tuple[int, ...]) -> None:
    """Refuse options a kind does not take, and a number of values it does not take."""
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise _bad_spec(text, f"unknown option(s) {', '.join(unknown)} for {kind}")
    if len(args) not in n_args:
        takes = " or ".join(map(str, n_args))
        raise _bad_spec(text, f"{kind} takes {takes} value(s), got {len(args)}")


def parse_split(
    spec: str, *, seed: int = 0, source: str | Path | None = None
) -> Callable[[Ratings], Split]:
    """Turn a command-line split spec into a function ``Ratings -> Split``.

    Forms (see :data:`SPEC_FORMS`): ``u1``..``u5``, ``ua``, ``ub`` (canonical files, read from
    ``source`` or else from the folder of the ratings' own source file), ``random:0.2``,
    ``random:0.1:seed=3``, ``kfold:5:2`` (fold index 2, 0-based), ``user:0.1``, ``user:100:val=100``,
    ``peruser:0.2``, ``leave:1``, ``temporal:0.2``, ``temporal:cutoff=889000000``, ``lastk:1``.
    ``seed`` is the default for specs without ``seed=``. The arguments are checked here, so a bad
    spec fails before any data is read.

    Raises:
        ConfigError: naming the spec and listing the valid forms.
    """
    text = str(spec).strip()
    kind, args, opts = _spec_fields(text)
    take = partial(_check_fields, text, kind, args, opts)  # take(allowed options, allowed numbers of values)
    try:
        if kind in CANONICAL_NAMES:
            take((), (0,))
            return partial(_canonical_for, name=kind, source=source)
        s = _num(text, opts.get("seed", str(seed)), "seed", int)
        _check_seed(s)
        if kind == "random":
            take(("seed",), (1,))
            f = _check_fraction(_num(text, args[0], "fraction", float), "test_fraction")
            return partial(random_split, test_fraction=f, seed=s)
        if kind == "kfold":
            take(("seed",), (2,))
            k = _check_count(_num(text, args[0], "K", int), "k", minimum=2)
            i = _num(text, args[1], "fold index", int)
            if not 0 <= i < k:
                raise ConfigError(f"fold index must be in 0..{k - 1}; got {i}")
            return partial(_kfold_one, k=k, index=i, seed=s)
        if kind == "user":
            take(("seed", "val"), (1,))
            test_users = _users_arg(text, args[0], "test_users")
            val = _users_arg(text, opts.get("val", "0.0"), "validation_users", allow_zero=True)
            return partial(user_split, test_users=test_users, validation_users=val, seed=s)
        if kind in ("peruser", "leave"):
            take(("seed", "min_train"), (1,))
            m = _check_count(_num(text, opts.get("min_train", "1"), "min_train", int), "min_train")
            if kind == "peruser":
                f = _check_fraction(_num(text, args[0], "fraction", float), "test_fraction")
                return partial(per_user_split, test_fraction=f, seed=s, min_train=m)
            k = _check_count(_num(text, args[0], "K", int), "leave_k")
            return partial(per_user_split, leave_k=k, seed=s, min_train=m)
        if kind == "temporal":
            take(("cutoff",), (0,) if "cutoff" in opts else (1,))
            if "cutoff" in opts:
                return partial(temporal_split, cutoff=_num(text, opts["cutoff"], "cutoff", int))
            f = _check_fraction(_num(text, args[0], "fraction", float), "test_fraction")
            return partial(temporal_split, test_fraction=f)
        if kind == "lastk":
            take(("min_train",), (1,))
            k = _check_count(_num(text, args[0], "K", int), "k")
            m = _check_count(_num(text, opts.get("min_train", "1"), "min_train", int), "min_train")
            return partial(last_k_split, k=k, min_train=m)
    except ConfigError as e:
        if str(e).startswith("bad split spec"):
            raise
        raise _bad_spec(text, str(e)) from None
    raise _bad_spec(text, f"unknown kind {kind!r}")


def _users_arg(spec: str, text: str, what: str, *, allow_zero: bool = False) -> float | int:
    """``"0.1"`` -> 0.1 (a fraction of users), ``"100"`` -> 100 (a number of users)."""
    if any(c in text for c in ".eE"):
        return _check_fraction(_num(spec, text, what, float), what, allow_zero=allow_zero)
    return _check_count(_num(spec, text, what, int), what, minimum=0 if allow_zero else 1)


def _canonical_for(ratings: Ratings, *, name: str, source: str | Path | None) -> Split:
    """The canonical split ``name`` from ``source``, or from the folder of ``ratings.source``."""
    folder = source if source is not None else ratings.source
    if folder is None or str(folder).startswith("<"):
        raise DataError(
            f"split {name} needs the MovieLens 100K folder, but the ratings did not come from a file",
            value=ratings.source, fix="read the ratings from ml-100k/u.data, or use a random split",
        )
    return canonical_split(folder, name)
