"""Ranking metrics against hand-computed cases, and the chunked evaluation around them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from aerec.errors import ConfigError
from aerec.ranking import (
    average_precision_at_k,
    catalogue_coverage,
    evaluate_ranking,
    hit_rate_at_k,
    hits_of,
    ndcg_at_k,
    parse_metric,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    top_k,
)

# User 0 ranks [3, 1, 7, 2, 5] and held out {1, 2, 9}: hits at ranks 2 and 4, 3 relevant.
# User 1 ranks [4, 0, 6, 8, 9] and held out {4}: a hit at rank 1, 1 relevant.
TOP = np.array([[3, 1, 7, 2, 5], [4, 0, 6, 8, 9]])
HITS = np.array([[0, 1, 0, 1, 0], [1, 0, 0, 0, 0]], dtype=bool)
N_REL = np.array([3, 1])
L2, L3, L5 = 1 / math.log2(2 + 1), 1 / math.log2(3 + 1), 1 / math.log2(4 + 1)  # discounts of ranks 2, 3, 4


def _csr(rows: list[list[int]], n: int = 10) -> sp.csr_array:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_array((np.ones(len(c), dtype=np.float32), (r, c)), shape=(len(rows), n))


def test_hits_of_marks_held_out_items_in_the_lists():
    assert (hits_of(TOP, _csr([[1, 2, 9], [4]])) == HITS).all()
    assert not hits_of(np.array([[-1, -1]]), _csr([[0]])).any()  # -1: no item at that rank


def test_recall_is_normalised_by_min_k_and_held_out():
    np.testing.assert_allclose(recall_at_k(HITS, N_REL, 2), [1 / 2, 1.0])  # 1 of min(2, 3)
    np.testing.assert_allclose(recall_at_k(HITS, N_REL, 5), [2 / 3, 1.0])  # 2 of min(5, 3)


def test_ndcg_by_hand():
    ideal3 = 1 + L2 + L3  # three relevant items at ranks 1..3
    np.testing.assert_allclose(ndcg_at_k(HITS, N_REL, 5), [(L2 + L5) / ideal3, 1.0])
    np.testing.assert_allclose(ndcg_at_k(HITS, N_REL, 2), [L2 / (1 + L2), 1.0])  # ideal: 2 of the 3 fit
    np.testing.assert_allclose(ndcg_at_k(HITS, N_REL, 1), [0.0, 1.0])


def test_hit_rate_precision_and_mrr_by_hand():
    np.testing.assert_allclose(hit_rate_at_k(HITS, 1), [0, 1])
    np.testing.assert_allclose(hit_rate_at_k(HITS, 2), [1, 1])
    np.testing.assert_allclose(precision_at_k(HITS, 5), [2 / 5, 1 / 5])
    np.testing.assert_allclose(precision_at_k(HITS, 2), [1 / 2, 1 / 2])
    np.testing.assert_allclose(reciprocal_rank(HITS, 5), [1 / 2, 1])
    np.testing.assert_allclose(reciprocal_rank(HITS, 1), [0, 1])


def test_average_precision_by_hand():
    # User 0: precision 1/2 at rank 2 and 2/4 at rank 4, summed over min(k, 3) relevant.
    np.testing.assert_allclose(average_precision_at_k(HITS, N_REL, 5), [(1 / 2 + 2 / 4) / 3, 1.0])
    np.testing.assert_allclose(average_precision_at_k(HITS, N_REL, 2), [(1 / 2) / 2, 1.0])


def test_catalogue_coverage():
    assert catalogue_coverage(TOP, 10, 2) == pytest.approx(4 / 10)  # {3, 1, 4, 0}
    assert catalogue_coverage(TOP, 10, 5) == pytest.approx(1.0)  # the two lists hold all ten items
    assert catalogue_coverage(np.array([[2, -1]]), 4, 2) == pytest.approx(1 / 4)


def test_parse_metric():
    assert parse_metric("NDCG@100") == ("ndcg", 100)
    assert parse_metric("hit_rate@5") == ("hit_rate", 5)
    for bad in ("ndcg", "ndcg@0", "auc@10", "recall@x"):
        with pytest.raises(ConfigError, match="ranking metric"):
            parse_metric(bad)


def test_top_k_leaves_out_inputs_and_pads_short_lists():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.4, 0.3, 0.2, 0.1]])
    top = top_k(scores, _csr([[1], [0, 1, 2]], n=4), 3)
    assert top.tolist() == [[3, 2, 0], [3, -1, -1]]


def _scores_for(table: np.ndarray, calls: list[int]):
    def score(positions: np.ndarray) -> torch.Tensor:
        calls.append(len(positions))
        return torch.from_numpy(table[positions])

    return score


def test_evaluate_ranking_matches_the_per_user_functions_and_skips_users_without_held_out():
    # Scores that rank exactly TOP (higher = earlier), for users 0 and 1; user 2 has nothing held out.
    table = np.zeros((3, 10), dtype=np.float32)
    for u, items in enumerate(TOP):
        table[u, items] = np.arange(10, 5, -1)
    inputs = _csr([[0], [], [5]])  # items the users gave (below their top 5 anyway)
    held = _csr([[1, 2, 9], [4], []])
    calls: list[int] = []
    metrics = ["recall@5", "ndcg@5", "mrr@5", "coverage@2"]
    out = evaluate_ranking(_scores_for(table, calls), inputs, held, metrics, chunk=1)
    assert out["n_users"] == 2 and out["n_held_out"] == 4 and calls == [1, 1]
    assert out["recall@5"] == pytest.approx((2 / 3 + 1) / 2)
    assert out["ndcg@5"] == pytest.approx(((L2 + L5) / (1 + L2 + L3) + 1) / 2)
    assert out["mrr@5"] == pytest.approx((1 / 2 + 1) / 2)
    assert out["coverage@2"] == pytest.approx(4 / 10)


def test_chunks_give_the_same_figures_and_bound_what_is_scored():
    rng = np.random.default_rng(0)
    table = rng.random((50, 40)).astype(np.float32)
    inputs = sp.csr_array((rng.random((50, 40)) < 0.1).astype(np.float32))
    held = sp.csr_array(((rng.random((50, 40)) < 0.1) & (inputs.toarray() == 0)).astype(np.float32))
    metrics = ["recall@5", "ndcg@10", "map@10", "hit_rate@3", "precision@5", "mrr@10", "coverage@5"]
    calls: list[int] = []
    small = evaluate_ranking(_scores_for(table, calls), inputs, held, metrics, chunk=7)
    assert max(calls) <= 7
    big = evaluate_ranking(_scores_for(table, []), inputs, held, metrics, chunk=1000)
    assert small == pytest.approx(big)
    # An input item is never ranked, so it can never be a hit even if it were held out too.
    both = sp.csr_array(inputs + held)
    assert evaluate_ranking(_scores_for(table, []), both, held, ["recall@40"])["recall@40"] == 0.0
