"""``aerec demo [--toy]``: the library's demo (:mod:`aerec.demo`) printed as Rich tables.

Offline and quick: built-in synthetic data, train, compare with the baselines and the noise
floor, recommend for a known and a brand-new user (under a minute on two cores). ``--toy``
fills in the blanks of the built-in ``toy`` 11 x 6 like/dislike matrix in a few seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from aerec.cli import app, err_console, out_console

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["demo_command"]


@app.command("demo")
def demo_command(
    toy: bool = typer.Option(False, "--toy", help="Fill in the blanks of the 11 x 6 like/dislike example instead."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data, the split and the training."),
    out: Path | None = typer.Option(None, "--out", metavar="DIR", help="Also save the trained model here."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """Offline tour: train on built-in data, compare with baselines, recommend (under a minute)."""
    from aerec import demo
    from aerec.cli.common import check_out_dir

    if out is not None:
        check_out_dir(out)
    if toy:
        _print_toy(demo.run_toy_demo(seed=seed, out=out))
        return
    err_console.print(
        f"Generating {demo.DEMO_RATINGS:,} synthetic ratings ({demo.DEMO_USERS:,} users x {demo.DEMO_ITEMS:,} items, "
        f"seed {seed}) from a known low-rank model; holding out {demo.DEMO_TEST_FRACTION:.0%} as the test set.",
        soft_wrap=True,
    )
    _print_demo(demo.run_demo(seed=seed, out=out, progress=progress))


# ----------------------------------------------------------------------------- synthetic demo
def _print_demo(report) -> None:
    d = report.data
    out_console.print(
        f"[bold]aerec demo[/]: {d['ratings']:,} synthetic ratings, {d['users']:,} users x {d['items']:,} items; "
        f"trained [bold]{escape(report.kind)}[/] on {report.n_train:,} ratings in {report.fit_seconds:.1f} s "
        f"({report.epochs_run} epochs, best {report.best_epoch} on validation"
        + (f", then {report.refit_epochs} on all {report.n_train:,}" if report.refit_epochs else "")
        + (" from its weights" if report.refit_epochs and report.model.resolved()[1].refit_start == "selected" else "")
        + ").",
        soft_wrap=True,
    )
    table = Table(title=f"test RMSE on {report.n_test:,} held-out ratings (lower is better)", box=box.SIMPLE_HEAD)
    table.add_column("predictor")
    table.add_column("RMSE", justify="right")
    table.add_column("MAE", justify="right")
    table.add_column("what it is")
    for k, row in enumerate(report.rows):
        style = "bold green" if k == 0 else ("dim" if row.mae is None else "")
        table.add_row(
            escape(row.name), f"{row.rmse:.4f}", "-" if row.mae is None else f"{row.mae:.4f}", escape(row.note),
            style=style,
        )
    out_console.print(table)
    out_console.print(
        f"Known user {report.known_user} has {report.known_user_count} ratings in training; "
        "what they have rated is left out:", soft_wrap=True,
    )
    out_console.print(_recs_table(report.known_recs, f"top 5 for known user {report.known_user}"))
    given = ", ".join(f"{item}={rating:g}" for item, rating in report.new_user_ratings.items())
    out_console.print(
        f"A brand-new user rates items {given}; no retraining needed:",
        soft_wrap=True,
    )
    out_console.print(_recs_table(report.new_recs, "top 5 for the brand-new user"))
    hint = (
        f"Saved to {report.out}: try `aerec recommend {report.out} --user {report.known_user}`."
        if report.out is not None else "Add --out DIR to keep the model, then `aerec recommend DIR --user ID`."
    )
    out_console.print(
        f"Done in {report.seconds:.0f} s. {escape(hint)} Real data: `aerec datasets download ml-100k`, then "
        "`aerec train --data ml-100k --split u1 --out model`.",
        soft_wrap=True,
    )


def _recs_table(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=escape(title), box=box.SIMPLE_HEAD)
    table.add_column("rank", justify="right")
    table.add_column("item", justify="right")
    if "title" in frame.columns:
        table.add_column("title")
    table.add_column("relevance", justify="right")  # what the list is ranked by
    table.add_column("predicted rating", justify="right")
    for rank, row in enumerate(frame.itertuples(index=False), start=1):
        cells = [str(rank), escape(str(row.item))]
        if "title" in frame.columns:
            cells.append(escape(str(row.title)))
        cells += [f"{row.score:.3f}", f"{row.prediction:.2f}"]
        table.add_row(*cells)
    return table


# ----------------------------------------------------------------------------- toy
def _print_toy(report) -> None:
    out_console.print(_matrix_table(
        report.observed, None, "the course's like/dislike matrix (1 liked, 0 disliked, . unrated)"
    ))
    out_console.print(
        f"Trained a user-based {escape(report.kind)} ({_hidden(report.model)} hidden units, "
        f"{report.loss} loss for 0/1 data) on the {int(report.observed.notna().to_numpy().sum())} known cells; it reproduces "
        f"{report.accuracy:.0%} of them.",
        soft_wrap=True,
    )
    out_console.print(_matrix_table(
        report.observed, report.predicted, "the blanks filled in: predicted probability of a like (highlighted)"
    ))
    if report.out is not None:
        out_console.print(f"Saved to {escape(str(report.out))}.")


def _matrix_table(observed: pd.DataFrame, predicted: pd.DataFrame | None, title: str) -> Table:
    import numpy as np

    table = Table(title=escape(title), box=box.SIMPLE_HEAD)
    table.add_column("")
    for item in observed.columns:
        table.add_column(escape(str(item)), justify="center")
    values = observed.to_numpy()
    for r, user in enumerate(observed.index):
        cells = []
        for c in range(values.shape[1]):
            v = values[r, c]
            if not np.isnan(v):
                cells.append(f"{v:.0f}")
            elif predicted is None:
                cells.append("[dim].[/]")
            else:
                cells.append(f"[bold yellow]{predicted.iloc[r, c]:.2f}[/]")
        table.add_row(escape(str(user)), *cells)
    return table


def _hidden(model: Any) -> str:
    params, _, _ = model.resolved()
    return "-".join(str(h) for h in params.hidden)
