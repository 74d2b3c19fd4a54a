"""Shared fixtures and helpers. MovieLens 100K is read from $AEREC_DATA_HOME/ml-100k and never committed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _ml100k() -> Path | None:
    home = os.environ.get("AEREC_DATA_HOME")
    if not home:
        return None
    d = Path(home) / "ml-100k"
    return d if (d / "u.data").is_file() else None


ML100K = _ml100k()
needs_ml100k = pytest.mark.skipif(
    ML100K is None,
    reason="MovieLens 100K not found: set AEREC_DATA_HOME to a folder holding ml-100k/ "
    "(e.g. AEREC_DATA_HOME=../shared/data); its licence forbids shipping it with the tests",
)


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The ml-100k folder (u.data, u.item, u1.base, ...); skips the test when absent."""
    if ML100K is None:
        pytest.skip("MovieLens 100K not found: set AEREC_DATA_HOME to a folder holding ml-100k/")
    return ML100K


def continue_by_hand(selected, csr, rows, epochs: int):
    """The refit from selected weights written out, for tests to compare against: ``selected``'s
    best weights (a model fitted with ``train.refit = false``), over the bias model of every
    rating ``csr``, trained ``epochs`` more epochs on ``rows``; returns that network."""
    import dataclasses

    from aerec.baseline import BiasModel
    from aerec.recommender import Recommender
    from aerec.training import Trainer

    net = selected.net_.train()
    Recommender._use_baseline(net, selected.params_, BiasModel().fit(csr))
    params, train_cfg, run = selected.resolved()
    cfg = dataclasses.replace(train_cfg, epochs=epochs, validation=0.0, patience=0)
    Trainer(cfg, seed=run.seed).fit(net, rows, loss="mse", l2=params.l2, code_l1=params.code_l1)
    return net
