"""Learning curves as PNG (matplotlib).

Figures are made with matplotlib's object-oriented API (``matplotlib.figure.Figure``), not
pyplot: no backend is chosen or changed (a notebook's stays as it is) and nothing is kept in
pyplot's list of open figures. ``savefig`` renders PNG with the Agg renderer whatever the
session's backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["history_figure", "plot_history"]


def history_figure(history: pd.DataFrame, *, title: str = "aerec", best_epoch: int | None = None) -> Any:
    """The learning curves as a matplotlib Figure: training RMSE (or loss) and validation RMSE
    per epoch, with ``best_epoch`` marked (the epoch training kept, which early stopping's
    ``min_delta`` can make differ from the lowest validation RMSE; that one when not given)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.subplots()
    if len(history):
        train = history["train_rmse"] if history["train_rmse"].notna().any() else history["loss"]
        ax.plot(history["epoch"], train, label="train RMSE" if history["train_rmse"].notna().any() else "train loss")
        if "val_rmse" in history and history["val_rmse"].notna().any():
            ax.plot(history["epoch"], history["val_rmse"], label="validation RMSE")
            rows = history.index[history["epoch"] == best_epoch] if best_epoch is not None else []
            best = rows[0] if len(rows) else history["val_rmse"].idxmin()
            ax.scatter([history.loc[best, "epoch"]], [history.loc[best, "val_rmse"]], color="C1", zorder=3,
                       label=f"best {history.loc[best, 'val_rmse']:.4f} (epoch {int(history.loc[best, 'epoch'])})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_history(history: pd.DataFrame, path: str | Path, *, title: str = "aerec", best_epoch: int | None = None) -> Path:
    """Plot :func:`history_figure` into ``path`` (PNG)."""
    history_figure(history, title=title, best_epoch=best_epoch).savefig(path, format="png")
    return Path(path)
