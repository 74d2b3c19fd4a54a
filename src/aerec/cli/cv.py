"""``aerec cv``: cross-validation of a rating model, a thin command over
:func:`aerec.crossval.cross_validate`.

It parses the flags (the model settings as ``aerec train`` takes them), calls the library and
prints one table on stderr (each fold, the mean and standard deviation, the bias baseline
beside them) or, with ``--json``, one JSON object on stdout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from aerec.cli import app, out_console
from aerec.cli.common import (
    ColumnsOption,
    ConfigFileOption,
    DataOption,
    DeviceOption,
    DuplicatesOption,
    EpochsOption,
    FormatOption,
    JsonOption,
    NRatingsOption,
    PresetOption,
    ScaleOption,
    SepOption,
    SetOption,
    TasteOption,
    build_config,
    count_bar,
    fmt_value,
    reader_options,
    stdin_as_file,
    warnings_to_console,
    with_synthetic,
)
from aerec.errors import ConfigError
from aerec.registry import family_names

if TYPE_CHECKING:
    from aerec.crossval import CVResult

# The figure columns of the table: (key in a fold's record, header, digits).
COLUMNS = (
    ("rmse", "RMSE", 4), ("mae", "MAE", 4), ("precision@{k}", "P@{k}", 4), ("recall@{k}", "R@{k}", 4),
    ("ndcg@{k}", "NDCG@{k}", 4), ("fit_seconds", "fit s", 2), ("test_seconds", "test s", 2),
)


@app.command("cv")
def cv_command(
    data: str | None = DataOption,
    train_file: Path | None = typer.Option(None, "--train", metavar="FILE", help="A ratings file (- for stdin)."),
    folds: int | None = typer.Option(
        None, "--folds", metavar="K", help="A random K-fold of the ratings (seeded with --seed): each rating is "
        "tested once."
    ),
    splits: str | None = typer.Option(
        None, "--splits", metavar="SPEC,SPEC,...", help="Named splits instead of --folds, e.g. u1,u2,u3,u4,u5 "
        "(MovieLens 100K's canonical folds) or kfold:5:0,kfold:5:1,..."
    ),
    model: str | None = typer.Option(
        None, "--model", metavar="NAME", help=f"Model family: {family_names('explicit')} (default: autorec)."
    ),
    preset: str | None = PresetOption,
    config_file: Path | None = ConfigFileOption,
    sets: list[str] | None = SetOption,
    epochs: int | None = EpochsOption,
    device: str | None = DeviceOption,
    seed: int | None = typer.Option(None, "--seed", help="Random seed for the folds, the weights and shuffling."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads (run.threads; 0 = automatic; "
                                       "1 in each process with --jobs > 1)."),
    jobs: int = typer.Option(1, "--jobs", metavar="N", help="Run the folds in N processes (one thread each)."),
    k: int = typer.Option(10, "--k", metavar="K", help="The list length of precision@K, recall@K, NDCG@K."),
    relevant: float | None = typer.Option(
        None, "--relevant", metavar="RATING", help="The lowest test rating that counts as relevant for the top-N "
        "metrics (default: 4 on 1..5)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar over the folds."),
    fmt: str | None = FormatOption,
    columns: str | None = ColumnsOption,
    sep: str | None = SepOption,
    scale: str | None = ScaleOption,
    duplicates: str | None = DuplicatesOption,
    n_ratings: int | None = NRatingsOption,
    taste: float | None = TasteOption,
    as_json: bool = JsonOption,
) -> None:
    """Cross-validate a rating model: train on each fold's training part, test on the rest, and
    report each fold's RMSE, MAE, precision/recall/NDCG@K and times, their mean and standard
    deviation, and the bias baseline on the same folds.

    Implicit (top-N) models are refused: evaluate them with aerec train --implicit --split.
    """
    from aerec.crossval import check_fold_count, cross_validate

    if (data is None) == (train_file is None):
        raise ConfigError("say what to cross-validate: --data NAME|PATH or --train FILE (one of them)")
    if (folds is None) == (splits is None):
        raise ConfigError("give either --folds K (a random K-fold of the ratings) or --splits SPEC,SPEC,... "
                          "(e.g. u1,u2,u3,u4,u5)" + (", not both" if folds is not None else ""))
    if folds is not None:
        check_fold_count(folds, 2**62)  # below 2: refused before any data is read
    if k < 1:
        raise ConfigError(f"--k {k}: the list length must be a positive whole number, e.g. --k 10")
    shortcuts = {"model": {"kind": model, "preset": preset}, "train": {"epochs": epochs},
                 "run": {"seed": seed, "device": device, "threads": threads}}
    config = build_config(config_file, shortcuts, sets)
    options = with_synthetic(reader_options(fmt, columns, sep, scale, duplicates), data, n_ratings, taste)
    specs = None if splits is None else splits.split(",")
    with warnings_to_console(), stdin_as_file(train_file, "--train") as train_in:
        source = data if data is not None else Path(train_in)
        with count_bar("folds", progress and not as_json) as on_fold:
            result = cross_validate(source, folds=folds, splits=specs, config=config, k=k, relevant=relevant,
                                    jobs=jobs, options=options, progress=on_fold)
    if str(train_file) == "-":
        result.source = "<stdin>"
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    else:
        print_table(result, k)


def print_table(result: CVResult, k: int) -> None:
    """One row per fold, then the mean and standard deviation over the folds, then the bias
    baseline's mean and standard deviation on the same folds (Surprise's figures, any number
    of folds wide)."""
    from rich import box
    from rich.table import Table

    n_test = sum(f["n_test"] for f in result.folds)
    title = (f"aerec cv: {escape(result.model)} on {escape(result.source)}, {len(result.folds)} folds, "
             f"{n_test:,} test ratings in all")
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("", overflow="fold", min_width=9)  # a long split spec wraps; the figures never do
    table.add_column("test", justify="right", no_wrap=True)
    columns = [(key.format(k=k), header.format(k=k), digits) for key, header, digits in COLUMNS]
    for _, header, _ in columns:
        table.add_column(header, justify="right", no_wrap=True)
    for fold in result.folds:
        table.add_row(escape(fold["fold"]), fmt_value(fold["n_test"]), *[fmt_value(fold.get(key), d) for key, _, d in columns])
    summaries = (("mean", result.mean, "bold"), ("std", result.std, None),
                 ("bias mean", result.baseline_mean, "dim"), ("bias std", result.baseline_std, "dim"))
    for n, (label, values, style) in enumerate(summaries):
        table.add_row(label, "", *[fmt_value(values.get(key), d) for key, _, d in columns], style=style,
                      end_section=n == 1)
    table.rows[len(result.folds) - 1].end_section = True
    out_console.print(table)  # the result itself: stdout, so `> file` keeps it
    out_console.print("std: standard deviation over the folds (population, as Surprise's cross_validate); "
                      "bias: mu + b_u + b_i (aerec.BiasModel) fitted and tested on the same folds", soft_wrap=True,
                      style="dim")
