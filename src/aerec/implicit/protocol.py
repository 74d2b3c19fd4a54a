"""Who is evaluated, on what input, against which held-out items (docs/evaluation.md, strong
generalization).

Strong generalization (Mult-VAE's protocol): test users are *whole users* the model never
trained on. Each gives the model ``fold_in`` (80 %) of their positives, drawn at random
(seeded); the other 20 % are held out, and the model ranks them among every item the user did
not give (fold-in items are left out of the ranking). Per-user hold-out (weak
generalization) is the other case: a user the model trained on gives their training row as
input and the held-out items are their test positives.

:func:`ranking_task` decides per user: a test user the model knows is a per-user hold-out, one
it does not know is folded in. Test items the model cannot rank (not in its vocabulary, or in
it but liked by no training user: rated below the threshold only) are dropped before anything
else, and counted, as Mult-VAE does: they could never be hit, so keeping them would lower every
model's recall alike and count users who have nothing findable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from aerec.data.ratings import Ratings
from aerec.data.splits import fold_in_split
from aerec.data.vocab import Vocabulary

__all__ = ["RankingTask", "carve_validation", "ranking_task", "task_from_parts"]


@dataclass
class RankingTask:
    """Evaluation users as rows of two CSRs over the model's items, plus bookkeeping.

    Attributes:
        inputs: ``(n, n_items)`` what each user gives the model (left out of the ranking).
        held_out: ``(n, n_items)`` the items each user must find.
        user_rows: ``(n,)`` each user's row in the training matrix, -1 for new users.
        labels: ``(n,)`` the users' labels.
        n_unknown_items: test positives of items the model cannot rank (dropped).
        n_already_seen: test positives a known user already had in training (dropped).
    """

    inputs: sp.csr_array
    held_out: sp.csr_array
    user_rows: np.ndarray
    labels: np.ndarray
    n_unknown_items: int = 0
    n_already_seen: int = 0

    @property
    def n_new(self) -> int:
        return int((self.user_rows < 0).sum())

    @property
    def n_known(self) -> int:
        return int((self.user_rows >= 0).sum())

    def counts(self) -> dict[str, int]:
        """JSON-ready facts about the evaluated users, those with something to find (the metrics
        come from :func:`aerec.ranking.evaluate_ranking`, which skips the others too)."""
        scored = np.diff(self.held_out.indptr) > 0
        new = scored & (self.user_rows < 0)
        return {
            "n_new_users": int(new.sum()), "n_known_users": int((scored & (self.user_rows >= 0)).sum()),
            "n_fold_in": int(np.diff(self.inputs.indptr)[new].sum()),
            "n_unknown_items": int(self.n_unknown_items), "n_already_seen": int(self.n_already_seen),
        }


def _csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    """A 0/1 CSR with sorted indices from (row, col) pairs (no duplicates expected)."""
    csr = sp.csr_array((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    csr.sum_duplicates()
    csr.data[:] = 1.0
    csr.sort_indices()
    return csr


def _positive_frame(test: Ratings, threshold: float) -> pd.DataFrame:
    frame = test.frame
    if not test.implicit:
        frame = frame[frame["rating"].to_numpy(dtype=np.float64) >= threshold - 1e-9]
    return frame


def _rankable_columns(items: Vocabulary, labels: np.ndarray, rankable: np.ndarray | None) -> np.ndarray:
    """Each item label's column, or -1 where the model cannot rank it (unknown, or not in
    ``rankable``, a boolean mask over the vocabulary; None: every known item)."""
    cols = items.index(labels, unknown="missing")
    if rankable is not None:
        known = cols >= 0
        cols[known] = np.where(rankable[cols[known]], cols[known], -1)
    return cols


def ranking_task(
    users: Vocabulary,
    items: Vocabulary,
    seen: sp.csr_array,
    test: Ratings,
    *,
    threshold: float,
    fold_in: float = 0.8,
    seed: int = 0,
    rankable: np.ndarray | None = None,
) -> RankingTask:
    """The evaluation of ``test`` against a model with vocabularies ``users``/``items`` and
    training rows ``seen`` ``(n_users, n_items)``.

    ``test`` ratings at or above ``threshold`` (all rows of event data) are the positives;
    those on items outside the vocabulary or outside ``rankable`` ``(n_items,)`` bool (default:
    the items some row of ``seen`` liked) are dropped and counted first. Known users: input =
    their training row, held out = their test positives not in it. New users: their positives
    are divided by :func:`~aerec.data.splits.fold_in_split` (``fold_in`` of each user's items
    given, seeded by ``seed``); a user left with nothing to find is skipped.
    """
    if rankable is None:
        rankable = np.bincount(sp.csr_array(seen).indices, minlength=len(items)) > 0
    frame = _positive_frame(test, threshold)
    item_idx = _rankable_columns(items, frame["item"].to_numpy(), rankable)
    n_unknown = int((item_idx < 0).sum())
    frame, item_idx = frame[item_idx >= 0], item_idx[item_idx >= 0]
    user_idx = users.index(frame["user"].to_numpy(), unknown="missing")
    known = user_idx >= 0

    # Known users: per-user hold-out against their training rows.
    k_users = np.unique(user_idx[known])
    already = np.zeros(int(known.sum()), dtype=bool)
    if known.any():
        member = sp.csr_array(seen)[user_idx[known], item_idx[known]]  # 1 where the pair was trained on
        already = np.asarray(member).ravel() > 0
    k_row = np.searchsorted(k_users, user_idx[known][~already])
    k_inputs = sp.csr_array(seen)[k_users] if len(k_users) else sp.csr_array((0, len(items)), dtype=np.float32)

    # New users: fold in part of their positives, hold out the rest.
    new_frame = frame[~known]
    new_labels = np.asarray(pd.unique(new_frame["user"]), dtype=object)
    if len(new_frame):
        sub = Ratings(new_frame, test.scale, test.source, None, test.implicit)
        given, held = fold_in_split(sub, fold_in, seed=seed)
        new_labels = np.sort(new_labels) if _sortable(new_labels) else new_labels
        lookup = {label: k for k, label in enumerate(new_labels)}
        parts = []
        for part in (given, held):
            rows = np.fromiter((lookup[u] for u in part.frame["user"]), dtype=np.int64, count=len(part))
            parts.append(_csr(rows, items.index(part.frame["item"].to_numpy()), (len(new_labels), len(items))))
        n_inputs, n_held = parts
    else:
        n_inputs = n_held = sp.csr_array((0, len(items)), dtype=np.float32)

    k_held = _csr(k_row, item_idx[known][~already], (len(k_users), len(items)))
    return RankingTask(
        inputs=sp.csr_array(sp.vstack([k_inputs, n_inputs], format="csr")),
        held_out=sp.csr_array(sp.vstack([k_held, n_held], format="csr")),
        user_rows=np.concatenate([k_users, np.full(len(new_labels), -1, dtype=np.int64)]),
        labels=np.concatenate([np.asarray(users.label(k_users), dtype=object), new_labels]),
        n_unknown_items=n_unknown,
        n_already_seen=int(already.sum()),
    )


def task_from_parts(
    items: Vocabulary, fold_in: Ratings, held_out: Ratings, *, threshold: float, rankable: np.ndarray | None = None
) -> RankingTask:
    """A task of new users from explicit parts: ``fold_in`` is given, ``held_out`` is to find
    (both thresholded; items the model cannot rank, unknown or outside ``rankable``
    ``(n_items,)`` bool, are dropped and counted)."""
    given, held = _positive_frame(fold_in, threshold), _positive_frame(held_out, threshold)
    labels = pd.unique(pd.concat([given["user"], held["user"]], ignore_index=True))
    labels = np.sort(np.asarray(labels, dtype=object)) if _sortable(labels) else np.asarray(labels, dtype=object)
    lookup = {label: k for k, label in enumerate(labels)}
    n_unknown, parts = 0, []
    for frame in (given, held):
        cols = _rankable_columns(items, frame["item"].to_numpy(), rankable)
        n_unknown += int((cols < 0).sum())
        rows = np.fromiter((lookup[u] for u in frame["user"]), dtype=np.int64, count=len(frame))
        parts.append(_csr(rows[cols >= 0], cols[cols >= 0], (len(labels), len(items))))
    return RankingTask(parts[0], parts[1], np.full(len(labels), -1, dtype=np.int64), labels, n_unknown, 0)


def carve_validation(
    seen: sp.csr_array, fraction: float, seed: int, *, hold: float = 0.2
) -> tuple[np.ndarray, RankingTask | None]:
    """Validation carved from training users: a seeded ``fraction`` of the users with at least
    two positives lend ``hold`` (at least one) of their items as targets.

    Returns a boolean mask over ``seen.data`` of the lent cells (to leave out of training) and
    the task (inputs = the rest of those users' rows); ``None`` when nothing can be carved.
    A lent cell whose item no kept cell likes cannot be ranked: it stays lent, is no target,
    and is counted in ``n_unknown_items``.
    """
    counts = np.diff(seen.indptr)
    eligible = np.flatnonzero(counts >= 2)
    n_val = int(np.floor(fraction * len(eligible) + 0.5))
    mask = np.zeros(seen.nnz, dtype=bool)
    if fraction <= 0 or n_val < 1:
        return mask, None
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, size=n_val, replace=False))
    for u in chosen:
        start, n = seen.indptr[u], counts[u]
        k = max(1, int(np.floor(hold * n + 0.5)))
        mask[start + rng.choice(n, size=k, replace=False)] = True
    rows = np.repeat(np.arange(seen.shape[0]), counts)
    keep_in = ~mask
    rankable = np.bincount(seen.indices[keep_in], minlength=seen.shape[1]) > 0
    target = mask & rankable[seen.indices]
    inputs = _csr(rows[keep_in], seen.indices[keep_in], seen.shape)[chosen]
    held = _csr(rows[target], seen.indices[target], seen.shape)[chosen]
    task = RankingTask(sp.csr_array(inputs), sp.csr_array(held), chosen.astype(np.int64), chosen.astype(object),
                       n_unknown_items=int((mask & ~target).sum()))
    return mask, task


def _sortable(labels: np.ndarray) -> bool:
    try:
        np.sort(labels)
    except TypeError:
        return False
    return True
