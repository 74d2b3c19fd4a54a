"""curves.png: every plot is labelled, has a legend, and marks the epoch the summary reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aerec.plots import history_figure


def _marked_x(fig) -> list[float]:
    return [float(x) for ax in fig.axes for c in ax.collections for x in c.get_offsets()[:, 0]]


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_rating_curves_mark_the_reported_best_epoch() -> None:
    # Validation RMSE is lowest at epoch 4, but early stopping (min_delta) kept epoch 3.
    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "loss": [1.0, 0.9, 0.8, 0.7],
                            "train_rmse": [1.0, 0.9, 0.8, 0.7], "val_rmse": [1.0, 0.95, 0.9, 0.8999]})
    fig = history_figure(history, best_epoch=3)
    assert _marked_x(fig) == [3.0]
    assert any("epoch 3" in t for t in _legend_texts(fig))
    assert fig.axes[0].get_xlabel() == "epoch" and fig.axes[0].get_ylabel()
    assert _marked_x(history_figure(history)) == [4.0]  # no epoch given: the lowest RMSE


@pytest.mark.parametrize("kind", ["multvae", "ease"])
def test_implicit_curves_have_labels_and_one_legend(kind: str) -> None:
    from aerec.implicit.recommender import _figure

    if kind == "ease":
        history = pd.DataFrame({"l2": [10.0, 100.0, 1000.0], "val_ndcg@100": [0.2, 0.3, 0.25]})
    else:
        history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.5], "val_ndcg@100": [0.2, 0.31, 0.3],
                                "lr": 1e-3, "seconds": 0.1})
    fig = _figure(history, kind, "ndcg@100", best_epoch=3 if kind != "ease" else None)
    texts = _legend_texts(fig)
    assert any("validation ndcg@100" in t for t in texts), texts
    if kind != "ease":
        assert "train loss" in texts
        assert _marked_x(fig) == [3.0]  # the epoch the summary reports, not the highest figure (2)
    else:
        assert _marked_x(fig) == [100.0]
    assert fig.axes[0].get_xlabel()
    assert all(ax.get_ylabel() for ax in fig.axes)


def test_save_passes_the_reported_best_epoch(tmp_path, monkeypatch) -> None:
    import aerec.plots
    from aerec import Recommender
    from aerec.data.synthetic import synthetic_ratings

    seen = {}

    def spy(history, path, *, title, best_epoch=None):
        seen["best"] = best_epoch
        return aerec.plots.history_figure(history, title=title, best_epoch=best_epoch).savefig(path)

    monkeypatch.setattr(aerec.plots, "plot_history", spy)
    ratings = synthetic_ratings(1500, n_users=60, n_items=40, seed=0)
    model = Recommender("autorec", hidden=[8], epochs=4, seed=0).fit(ratings)
    model.save(tmp_path / "m")
    assert seen["best"] == model.train_result_.best_epoch is not None
    assert np.isfinite(model.train_result_.best_val)
