"""Top-N ranking metrics, and their evaluation in user chunks (docs/evaluation.md, implicit protocol).

Every metric reads a user's ranked list (best first, the items the user gave as input left
out) against the user's held-out items:

=================  =====================================================================
``recall@K``       hits in the top K / ``min(K, #held-out)`` (Liang et al. 2018: a user
                   with 3 held-out items can reach 1 at K = 20)
``ndcg@K``         ``sum_r hit_r / log2(r + 1)`` over ranks r = 1..K, divided by its best
                   possible value ``sum_{r <= min(K, #held-out)} 1 / log2(r + 1)``
``hit_rate@K``     1 when at least one held-out item is in the top K
``precision@K``    hits in the top K / K
``mrr@K``          1 / rank of the first hit within the top K (0 when there is none)
``map@K``          ``sum_r precision@r * hit_r / min(K, #held-out)`` (average precision)
``coverage@K``     share of the catalogue that appears in at least one user's top K
=================  =====================================================================

All but coverage are means over the users with at least one held-out item. The scores of a
chunk of users (``chunk x n_items``) are ranked with ``torch.topk``, so a full users x items
score matrix never exists (ranking every item for every user at once runs out of memory).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from aerec.errors import ConfigError

__all__ = [
    "DEFAULT_METRICS",
    "METRIC_KINDS",
    "average_precision_at_k",
    "catalogue_coverage",
    "evaluate_ranking",
    "hit_rate_at_k",
    "hits_of",
    "ndcg_at_k",
    "parse_metric",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank",
    "recommendation_rows",
    "top_k",
    "top_rows",
]

METRIC_KINDS = ("recall", "ndcg", "hit_rate", "precision", "mrr", "map", "coverage")
DEFAULT_METRICS = (
    "recall@20", "recall@50", "ndcg@100", "hit_rate@20", "precision@20", "mrr@100", "map@100", "coverage@20",
)
"""What ``aerec evaluate --json`` reports for implicit models: the paper's three first."""

# Users scored at once: bounds memory to CHUNK x n_items scores (float32).
CHUNK = 1024


def parse_metric(name: str) -> tuple[str, int]:
    """``"ndcg@100"`` -> ``("ndcg", 100)``; a ConfigError names anything else."""
    match = re.fullmatch(r"\s*([a-z_]+)@(\d+)\s*", str(name).lower())
    if not match or match.group(1) not in METRIC_KINDS or int(match.group(2)) < 1:
        raise ConfigError(f"unknown ranking metric {name!r}; use NAME@K with NAME one of {', '.join(METRIC_KINDS)}"
                          " and K >= 1, e.g. ndcg@100")
    return match.group(1), int(match.group(2))


# ----------------------------------------------------------------------------- per-user metrics
# ``hits`` is (n_users, L) bool: hits[u, r] says the item at rank r + 1 of user u's list is held
# out; ``n_relevant`` (n_users,) counts each user's held-out items. Lists may be longer than k.
def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))  # (k,) 1/log2(rank + 1)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user recall@k normalised by ``min(k, #held-out)``, ``(n_users,)``."""
    found = hits[:, :k].sum(1)
    return found / np.maximum(np.minimum(k, n_relevant), 1)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k with binary relevance, ``(n_users,)``."""
    disc = _discounts(k)
    dcg = (hits[:, :k] * disc[: hits[:, :k].shape[1]]).sum(1)
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(k, n_relevant)]  # (n_users,)
    return dcg / np.maximum(ideal, 1e-12)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Per-user 1.0 when a held-out item is in the top k, else 0.0."""
    return hits[:, :k].any(1).astype(np.float64)


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Per-user hits in the top k divided by k (a short list still divides by k)."""
    return hits[:, :k].sum(1) / k


def reciprocal_rank(hits: np.ndarray, k: int) -> np.ndarray:
    """Per-user 1 / rank of the first hit within the top k, 0 without one."""
    top = hits[:, :k]
    first = top.argmax(1)
    return np.where(top.any(1), 1.0 / (first + 1), 0.0)


def average_precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user AP@k: mean of precision@r over the ranks r of hits, over ``min(k, #held-out)``."""
    top = hits[:, :k].astype(np.float64)
    precision = np.cumsum(top, 1) / np.arange(1, top.shape[1] + 1)  # (n_users, k) precision@r
    return (precision * top).sum(1) / np.maximum(np.minimum(k, n_relevant), 1)


def catalogue_coverage(top: np.ndarray, n_items: int, k: int) -> float:
    """Share of ``n_items`` that appear in some user's top k (``top``: (n_users, L) indices, -1 = none)."""
    shown = top[:, :k].ravel()
    shown = shown[shown >= 0]
    return float(len(np.unique(shown)) / n_items) if n_items else 0.0


# ----------------------------------------------------------------------------- ranking
def top_k(scores: torch.Tensor, exclude: sp.csr_array | None, k: int) -> np.ndarray:
    """Indices of the ``k`` best items of each row of ``scores`` ``(chunk, n_items)``.

    Items in ``exclude`` (a ``(chunk, n_items)`` CSR: what each user gave as input) are never
    ranked; positions past the rankable items are -1. Returns ``(chunk, k)`` int64, best first.
    """
    return top_rows(scores.detach().float(), exclude, k)[0]


def top_indices(scores: np.ndarray, n: int) -> np.ndarray:
    """The indices of the ``n`` highest finite ``scores`` ``(n_items,)``, best first (fewer when
    fewer are finite: -inf marks what may not be listed). Ties keep the item order."""
    n = min(n, int(np.isfinite(scores).sum()))
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    top = np.argpartition(-scores, n - 1)[:n]
    return top[np.argsort(-scores[top], kind="stable")]


def top_rows(scores: torch.Tensor, exclude: sp.csr_array | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items of each row of ``scores`` ``(chunk, n_items)`` and their scores, in the
    scores' dtype: ``(chunk, k)`` int64 indices (-1 past the rankable items, those left at -inf
    or in ``exclude``) and ``(chunk, k)`` values (-inf there). ``scores`` is not modified."""
    scores = scores.clone()
    if exclude is not None and exclude.nnz:
        rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
        scores[torch.from_numpy(rows), torch.from_numpy(exclude.indices.astype(np.int64))] = -math.inf
    k_eff = min(k, scores.shape[1])
    values, index = torch.topk(scores, k_eff, dim=1)  # sorted, best first
    values, index = values.cpu().numpy(), index.cpu().numpy()
    index[~np.isfinite(values)] = -1
    if k_eff < k:
        index = np.pad(index, ((0, 0), (0, k - k_eff)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return index, values


def recommendation_rows(users: np.ndarray, items: np.ndarray, index: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """One row per recommendation (user, rank 1 = best, item, score) from :func:`top_rows`'
    ``index``/``values`` of a chunk whose row ``r`` is user label ``users[r]``; ``items``
    gives the item labels by index. Positions without a rankable item are left out."""
    row, col = np.nonzero(index >= 0)
    return pd.DataFrame({"user": users[row], "rank": col + 1, "item": items[index[row, col]],
                         "score": values[row, col]})


def hits_of(top: np.ndarray, relevant: sp.csr_array) -> np.ndarray:
    """``(n, L)`` bool: whether ``top[u, r]`` is among row u's items in ``relevant`` (n, n_items)."""
    # One chunk of users at a time, so the dense (n, n_items) membership table stays small.
    member = np.zeros(relevant.shape, dtype=bool)  # (n, n_items); the structure, not the values
    member[np.repeat(np.arange(relevant.shape[0]), np.diff(relevant.indptr)), relevant.indices] = True
    return np.take_along_axis(member, np.maximum(top, 0), axis=1) & (top >= 0)


def evaluate_ranking(
    score_rows: Callable[[np.ndarray], torch.Tensor],
    inputs: sp.csr_array,
    held_out: sp.csr_array,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    n_catalogue: int | None = None,
    chunk: int = CHUNK,
) -> dict[str, float | int]:
    """Rank each user's unseen items and score the lists against the held-out items.

    Args:
        score_rows: ``positions -> (len(positions), n_items)`` scores of those rows of
            ``inputs`` (the model reads only those rows: nothing of ``held_out``).
        inputs: ``(n_users, n_items)`` CSR of what each user gives the model (their fold-in
            part, or their training row); these items are left out of the ranking.
        held_out: ``(n_users, n_items)`` CSR of the items to find.
        metrics: names such as ``"ndcg@100"`` (see the module docstring).
        n_catalogue: the catalogue size for coverage (default ``n_items``).
        chunk: users scored at once.

    Returns:
        ``{metric: mean over users with held-out items, ..., "n_users": ..., "n_held_out": ...}``.
    """
    parsed = [parse_metric(m) for m in metrics]
    if inputs.shape != held_out.shape:
        raise ValueError(f"inputs {inputs.shape} and held_out {held_out.shape} differ in shape")
    users = np.flatnonzero(np.diff(held_out.indptr) > 0)
    longest = max((k for _, k in parsed), default=1)
    sums = {f"{kind}@{k}": 0.0 for kind, k in parsed if kind != "coverage"}
    tops = []
    for start in range(0, len(users), chunk):
        part = users[start : start + chunk]
        scores = score_rows(part)  # (chunk, n_items)
        top = top_k(scores, inputs[part], longest)  # (chunk, longest)
        truth = held_out[part]
        hits = hits_of(top, truth)
        n_rel = np.diff(truth.indptr)
        for kind, k in parsed:
            if kind != "coverage":
                sums[f"{kind}@{k}"] += float(_per_user(kind, hits, n_rel, k).sum())
        if any(kind == "coverage" for kind, _ in parsed):
            tops.append(top)
    n = len(users)
    out: dict[str, float | int] = {}
    for kind, k in parsed:
        name = f"{kind}@{k}"
        if kind == "coverage":
            all_top = np.concatenate(tops) if tops else np.empty((0, longest), dtype=np.int64)
            out[name] = catalogue_coverage(all_top, n_catalogue or held_out.shape[1], k)
        else:
            out[name] = sums[name] / n if n else float("nan")
    out["n_users"] = int(n)
    out["n_held_out"] = int(held_out.nnz)
    return out


def _per_user(kind: str, hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    if kind == "recall":
        return recall_at_k(hits, n_rel, k)
    if kind == "ndcg":
        return ndcg_at_k(hits, n_rel, k)
    if kind == "hit_rate":
        return hit_rate_at_k(hits, k)
    if kind == "precision":
        return precision_at_k(hits, k)
    if kind == "mrr":
        return reciprocal_rank(hits, k)
    return average_precision_at_k(hits, n_rel, k)
