"""Brand-new users: fold a few ratings into a trained network without retraining.

A trained network predicts user ``u``'s rating of item ``i`` through its last layer as
``g(F[i] . theta_u)``: ``F`` ``(n_items, d)`` are fixed item features and ``theta_u`` ``(d,)``
is the user's own part, ``g`` the output link (the identity for the rating models' default).

* item-based networks (I-AutoRec, ``dae``, ``sparse``): ``F[i] = [h_i, 1, 1]``, item ``i``'s
  hidden code, and ``theta_u = [w_u, b_u, c_u]``, user ``u``'s output weights, output bias
  and (with ``baseline``) bias-model offset; ``mu + b_i`` is a fixed offset;
* user-based networks (U-AutoRec, ``sae``, ``deep``): ``F[i] = [v_i, 1]``, item ``i``'s row
  of the output layer, and ``theta_u = [h_u, m_u]``, user ``u``'s last hidden activation and
  (with ``baseline``) the user's offset; the output bias and item offsets are fixed.

A new user's ``theta`` is unknown. The trained users give it a prior: ``theta ~ N(mean,
cov)`` over the users the network was trained on (empirical Bayes). Given ``k`` ratings
``t`` at items ``K``, the posterior mean of the user's scores is Gaussian conditioning
(Bayesian linear regression, solved in its ``k x k`` dual form)::

    z = m + alpha * F cov F[K]' c + beta * sum(c),   c = (alpha F[K] cov F[K]' + beta + s2 I)^-1 (g^-1(t) - m[K])

with ``m`` the prior mean of the scores, ``beta = s2 / reg_user`` the damped bias fold-in's
own prior on a user offset, and ``s2`` the rating noise: the variance of the training ratings
around ``m`` that the prior does not explain (a moment estimate, floored). The shrinkage
therefore grows as ``k`` falls: one rating moves the scores a little, twenty move them a lot.

Two knobs are chosen on validation ratings carved from the training data, never on test data
(:func:`calibrate`), per bucket of ``k`` (0, 1, 2-3, 4-7, 8-15, 16+):

* ``prior``: ``m`` is the network's average user (``"model"``) or the bias model's
  ``mu + b_i`` (``"bias"``);
* ``alpha`` in (0, 1/4, 1/2, 1, 2, 4): how much of the network's covariance to trust. ``alpha =
  0`` with the bias prior *is* the damped bias fold-in (``mu + b_i + b_u``, ``b_u`` shrunk by
  ``reg_user``), so validation falls back to it wherever the network does not clearly help
  (by more than two standard errors of the per-user gain).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ALPHAS", "BUCKETS", "FoldIn", "FoldInChoice", "Link", "calibrate", "bucket_of"]

# Lower ends of the k buckets (k = number of ratings a new user gave) and the k that stands
# for each bucket when validating.
BUCKETS = (0, 1, 2, 4, 8, 16)
BUCKET_K = (0, 1, 3, 5, 10, 20)
ALPHAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
PRIORS = ("bias", "model")
# Users sampled per k when validating: enough for a stable choice, cheap next to an epoch.
CALIBRATION_USERS = 2000
CHUNK_USERS = 100
# The noise variance never falls below this share of the ratings' variance around the prior.
NOISE_FLOOR = 0.05
# A candidate replaces the bias fold-in only if its validation gain exceeds this many standard
# errors (one-sided, about 97.5 %).
MARGIN = 2.0


def bucket_of(k: int) -> int:
    """The bucket of a user who gave ``k`` ratings (0..5)."""
    return int(np.searchsorted(BUCKETS, k, side="right") - 1)


@dataclass
class FoldInChoice:
    """What validation chose, one entry per bucket of ``k`` (saved in ``model.json``).

    The default, for a model fitted without validation ratings, trusts the network fully
    and starts from its average user.
    """

    prior: list[str] = field(default_factory=lambda: ["model"] * len(BUCKETS))
    alpha: list[float] = field(default_factory=lambda: [1.0] * len(BUCKETS))
    chosen_on: str = "default"  # "validation" when calibrate() chose it

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FoldInChoice:
        if not data:
            return cls()
        prior, alpha = list(data["prior"]), [float(a) for a in data["alpha"]]
        if len(prior) != len(BUCKETS) or len(alpha) != len(BUCKETS) or not set(prior) <= set(PRIORS):
            raise ValueError(f"fold_in must list {len(BUCKETS)} priors (bias or model) and alphas; got {data}")
        if not all(np.isfinite(alpha)) or min(alpha) < 0:
            raise ValueError(f"fold_in alphas must be finite and >= 0; got {alpha}")
        return cls(prior, alpha, str(data.get("chosen_on", "validation")))


class Link:
    """The output link ``g`` (scores -> ratings) and its inverse (ratings -> scores).

    ``name`` is the network's output activation; ``logits`` means binary cross-entropy (a
    sigmoid on top). Inverses clip into the link's range first: a rating of 1 on 0/1 data
    reads as a confident logit, not an infinite one.
    """

    SELU_SCALE, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772

    def __init__(self, name: str, *, logits: bool = False) -> None:
        self.name, self.logits = name, logits

    def __call__(self, z: np.ndarray) -> np.ndarray:
        if self.name == "sigmoid":
            z = 1 / (1 + np.exp(-z))
        elif self.name == "tanh":
            z = np.tanh(z)
        elif self.name == "relu":
            z = np.maximum(z, 0)
        elif self.name == "selu":
            z = self.SELU_SCALE * np.where(z > 0, z, self.SELU_ALPHA * np.expm1(np.minimum(z, 0)))
        return 1 / (1 + np.exp(-z)) if self.logits else z

    def inverse(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        if self.logits:
            p = 0.15 + 0.7 * np.clip(t, 0, 1)  # 0/1 -> confident logits
            t = np.log(p / (1 - p))
        if self.name == "sigmoid":
            p = np.clip(t, 0.02, 0.98)
            return np.log(p / (1 - p))
        if self.name == "tanh":
            return np.arctanh(np.clip(t, -0.98, 0.98))
        if self.name == "selu":
            low = -self.SELU_SCALE * self.SELU_ALPHA * 0.98
            t = np.maximum(t, low)
            return np.where(t > 0, t / self.SELU_SCALE, np.log1p(t / (self.SELU_SCALE * self.SELU_ALPHA)))
        return t  # identity, and relu above 0


class FoldIn:
    """The prior over a trained network's users and the posterior scores of a new user.

    Args:
        features: ``F`` ``(n_items, d)``.
        offset: fixed score offsets ``(n_items,)`` added before the link.
        theta: ``(n_users, d)`` the trained users' parts (users with ratings only).
        link: the output link.
        bias_mean: ``mu + b_i`` ``(n_items,)`` on the rating scale (the bias model).
        reg_user: the bias model's shrinkage of a user offset (ratings' worth).
        cells: the training ratings as ``(item indices, ratings)``, for the noise estimate.
        choice: the per-bucket prior and alpha.
    """

    def __init__(self, features: np.ndarray, offset: np.ndarray, theta: np.ndarray, link: Link,
                 bias_mean: np.ndarray, reg_user: float, cells: tuple[np.ndarray, np.ndarray],
                 choice: FoldInChoice | None = None) -> None:
        self.features = np.ascontiguousarray(features, dtype=np.float64)  # (n_items, d)
        self.link, self.reg_user = link, float(reg_user)
        self.choice = choice or FoldInChoice()
        theta = np.asarray(theta, dtype=np.float64)
        cov = np.cov(theta, rowvar=False) if len(theta) > 1 else np.zeros((theta.shape[1],) * 2)
        self.cov_features = self.features @ np.atleast_2d(cov)  # (n_items, d) F cov
        mean = theta.mean(0) if len(theta) else np.zeros(theta.shape[1])
        self.means = {
            "model": self.features @ mean + offset,  # (n_items,) the average trained user
            "bias": link.inverse(bias_mean),  # (n_items,) mu + b_i
        }
        prior_var = (self.cov_features * self.features).sum(1)  # (n_items,) diag(F cov F')
        items, ratings = cells
        z = link.inverse(ratings)
        self.spread = {p: float(np.mean((z - m[items]) ** 2)) if len(z) else 1.0 for p, m in self.means.items()}
        self.explained = float(np.mean(prior_var[items])) if len(items) else 0.0

    @property
    def n_items(self) -> int:
        return self.features.shape[0]

    def noise(self, prior: str, alpha: float) -> float:
        """The rating noise ``s2`` on the score scale: the ratings' variance around the prior
        mean less what ``alpha`` times the network's covariance and the user offset explain."""
        total = self.spread[prior]
        return max((total - alpha * self.explained) / (1 + 1 / self.reg_user), NOISE_FLOOR * total)

    def _prior(self, k: int, prior: str | None = None,
               alpha: float | None = None) -> tuple[np.ndarray, float, float, float]:
        """``(mean, alpha, beta, s2)`` for a user with ``k`` ratings: the prior mean ``(n_items,)``
        and the posterior's knobs, from the bucket's choice unless ``prior``/``alpha`` are given."""
        b = bucket_of(k)
        prior = self.choice.prior[b] if prior is None else prior
        alpha = self.choice.alpha[b] if alpha is None else alpha
        s2 = self.noise(prior, alpha)
        return self.means[prior], alpha, s2 / self.reg_user, s2

    def scores(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """A new user's predicted ratings ``(n_items,)`` (before clipping) from ``values`` at
        item indices ``idx``."""
        mean, alpha, beta, s2 = self._prior(len(idx))
        if len(idx) == 0:
            return self.link(mean)
        f_k, fc_k = self.features[idx], self.cov_features[idx]  # (k, d)
        c = _gram_solve(f_k, fc_k, alpha, beta, s2, self.link.inverse(values) - mean[idx])  # (k,)
        return self.link(mean + alpha * (self.features @ (fc_k.T @ c)) + beta * c.sum())

    def contributions(self, idx: np.ndarray, values: np.ndarray, targets: np.ndarray, *,
                      prior: str | None = None, alpha: float | None = None) -> np.ndarray:
        """Each given rating's additive share ``(len(targets), k)`` of the targets' scores.

        The posterior mean is linear in the ratings: ``z_t = m_t + sum_j W_tj (g^-1(t_j) - m_j)``
        with ``W = (alpha F_T cov F_K' + beta) gram^-1`` (``gram`` as in :meth:`scores`), so
        ``W_tj (g^-1(t_j) - m_j)`` is rating ``j``'s exact contribution to target ``t`` before
        the link: a row sums to ``g^-1(score_t) - m_t``. ``prior`` and ``alpha`` default to
        the bucket's choice (what :meth:`scores` uses); a known user is explained with the
        network-trusting ``("model", 1.0)`` instead (docs/explanations.md).
        """
        idx, targets = np.asarray(idx, dtype=np.int64), np.asarray(targets, dtype=np.int64)
        if len(idx) == 0:
            return np.zeros((len(targets), 0))
        mean, alpha, beta, s2 = self._prior(len(idx), prior, alpha)
        f_k, fc_k = self.features[idx], self.cov_features[idx]  # (k, d)
        cross = alpha * (self.features[targets] @ fc_k.T) + beta  # (t, k)
        weights = _gram_solve(f_k, fc_k, alpha, beta, s2, cross.T).T  # (t, k) cross gram^-1 (gram is symmetric)
        return weights * (self.link.inverse(values) - mean[idx])[None, :]


def _gram_solve(f_k: np.ndarray, fc_k: np.ndarray, alpha: float, beta: float, s2: float,
                rhs: np.ndarray) -> np.ndarray:
    """``gram^-1 rhs`` for ``gram = alpha F_K cov F_K' + beta 11' + s2 I`` ``(k, k)`` (``rhs``
    ``(k,)`` or ``(k, m)``), for the scores and their contributions alike.

    A user can have thousands of ratings: past ``2 (d + 1)`` of them the ``(d + 1)``-sized
    Woodbury form ``(rhs - U (s2 I + V'U)^-1 V' rhs) / s2`` (``U = [alpha F_K cov, beta 1]``,
    ``V = [F_K, 1]``, both ``(k, d + 1)``) costs ``k d^2`` instead of ``k^3``.
    """
    k, d = f_k.shape
    if k <= 2 * (d + 1):
        return np.linalg.solve(alpha * (fc_k @ f_k.T) + beta + s2 * np.eye(k), rhs)
    ones = np.ones((k, 1))
    u, v = np.hstack([alpha * fc_k, beta * ones]), np.hstack([f_k, ones])  # (k, d + 1)
    return (rhs - u @ np.linalg.solve(s2 * np.eye(d + 1) + v.T @ u, v.T @ rhs)) / s2


def calibrate(fold_in: FoldIn, given: list[np.ndarray], given_values: list[np.ndarray],
              targets: list[np.ndarray], target_values: list[np.ndarray], low: float, high: float,
              rng: np.random.Generator) -> FoldInChoice:
    """Choose the prior and alpha of each bucket on validation ratings.

    For each validation user ``j``, ``given[j]``/``given_values[j]`` are item indices and
    ratings the network trained on, ``targets[j]``/``target_values[j]`` ratings it never saw.
    For each bucket's ``k``, up to :data:`CALIBRATION_USERS` users with at least ``k`` given
    ratings fold in ``k`` of them (drawn with ``rng``); every candidate predicts their targets
    (clipped to ``[low, high]``) and the one with the smallest squared error wins, if it beats
    the damped bias fold-in (``bias``, alpha 0) by more than :data:`MARGIN` standard errors of
    the per-user difference; otherwise the bias fold-in stays (see :func:`_safe_best`).
    """
    prior_out, alpha_out = [], []
    usable = [j for j in range(len(given)) if len(targets[j])]
    for k in BUCKET_K:
        pool = [j for j in usable if len(given[j]) >= max(k, 1)]
        if len(pool) < 20:  # too few to choose on: keep the default for this bucket
            prior_out.append(FoldInChoice().prior[0])
            alpha_out.append(FoldInChoice().alpha[0])
            continue
        pool = rng.permutation(pool)[:CALIBRATION_USERS]
        picks = [rng.choice(len(given[j]), k, replace=False) for j in pool]
        errors: dict[tuple[str, float], np.ndarray] = {}
        for start in range(0, len(pool), CHUNK_USERS):  # bounded memory: (chunk, targets, d) blocks
            part = range(start, min(start + CHUNK_USERS, len(pool)))
            chunk = _candidate_errors(fold_in, [given[pool[j]][picks[j]] for j in part],
                                      [given_values[pool[j]][picks[j]] for j in part],
                                      [targets[pool[j]] for j in part], [target_values[pool[j]] for j in part],
                                      low, high)
            for cand, err in chunk.items():
                errors[cand] = np.concatenate([errors.get(cand, np.empty(0)), err])
        best = _safe_best(errors)
        prior_out.append(best[0])
        alpha_out.append(best[1])
    return FoldInChoice(prior_out, alpha_out, "validation")


def _safe_best(errors: dict[tuple[str, float], np.ndarray]) -> tuple[str, float]:
    """The candidate with the smallest summed error, unless its gain over the bias fold-in is
    within noise: validation users are few (hundreds), and a choice that only looks better on
    them can be worse on new users, while the bias fold-in is the floor a user expects."""
    floor = ("bias", 0.0)
    best = min(errors, key=lambda c: float(errors[c].sum()))
    gain = errors[floor] - errors[best]  # (n_users,) per-user reduction in squared error
    if best == floor or len(gain) < 2:
        return floor
    se = float(gain.std(ddof=1)) / np.sqrt(len(gain))
    return best if float(gain.mean()) > MARGIN * se else floor


def _candidate_errors(fold_in: FoldIn, idx: list[np.ndarray], values: list[np.ndarray], targets: list[np.ndarray],
                      target_values: list[np.ndarray], low: float, high: float) -> dict[tuple[str, float], np.ndarray]:
    """Per-user summed squared error ``(n_users,)`` on the targets of every (prior, alpha)
    candidate, all users at once."""
    n, k = len(idx), len(idx[0])
    width = max(len(t) for t in targets)
    tgt = np.zeros((n, width), dtype=np.int64)  # (n, v) target items, padded
    truth = np.zeros((n, width))
    mask = np.zeros((n, width), dtype=bool)
    for j, (t, v) in enumerate(zip(targets, target_values)):
        tgt[j, : len(t)], truth[j, : len(t)], mask[j, : len(t)] = t, v, True
    feats, cov_feats = fold_in.features, fold_in.cov_features
    errors = {}
    if k == 0:
        for prior in PRIORS:
            pred = np.clip(fold_in.link(fold_in.means[prior][tgt]), low, high)
            for alpha in ALPHAS:
                errors[(prior, alpha)] = (((pred - truth) ** 2) * mask).sum(1)
        return errors
    giv = np.stack(idx)  # (n, k)
    # Batched matrix products (BLAS) rather than einsum, whose two-operand loops do not use it.
    fc_given = cov_feats[giv]  # (n, k, d)
    gram = fc_given @ feats[giv].transpose(0, 2, 1)  # (n, k, k) F_K cov F_K'
    cross = feats[tgt] @ fc_given.transpose(0, 2, 1)  # (n, v, k) F_V cov F_K'
    z_given = fold_in.link.inverse(np.stack(values))  # (n, k)
    eye = np.eye(k)
    for prior in PRIORS:
        mean = fold_in.means[prior]
        resid = z_given - mean[giv]  # (n, k)
        for alpha in ALPHAS:
            s2 = fold_in.noise(prior, alpha)
            beta = s2 / fold_in.reg_user
            c = np.linalg.solve(alpha * gram + beta + s2 * eye, resid[..., None])[..., 0]  # (n, k)
            z = mean[tgt] + alpha * (cross @ c[..., None])[..., 0] + beta * c.sum(1, keepdims=True)
            pred = np.clip(fold_in.link(z), low, high)
            errors[(prior, alpha)] = (((pred - truth) ** 2) * mask).sum(1)
    return errors
