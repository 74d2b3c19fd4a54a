"""``aerec tune``: search a model family's hyper-parameters with Optuna (a thin layer over :mod:`aerec.tuning`).

Human output: one line per trial and the trial table on stderr, the best settings as TOML on
stdout (``aerec tune ... > best.toml``). ``--json`` prints one JSON object on stdout instead.
``--out DIR`` also refits the best settings on all the training ratings and saves the model
there, with ``best.toml`` and ``trials.csv`` next to it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from aerec.cli import app, err_console
from aerec.cli.common import (
    ColumnsOption,
    DataOption,
    DeviceOption,
    DuplicatesOption,
    FormatOption,
    ScaleOption,
    SepOption,
    json_default,
    reader_options,
)
from aerec.config import Config, load_config

if TYPE_CHECKING:
    from aerec.data.ratings import Ratings  # pandas: imported by the command itself, not by --help
from aerec.errors import ConfigError
from aerec.registry import family_names

__all__ = ["tune_command"]


def _read(source: str | Path, **options: Any) -> Ratings:
    """Ratings from a dataset name or a file (one place, so tests can watch what is read and when)."""
    from aerec.data.registry import load_dataset

    return load_dataset(source, **options)


def _inputs(
    data: str | None, split: str | None, train: Path | None, test: Path | None, seed: int, options: dict[str, Any]
) -> tuple[Ratings, Ratings | Callable[[], Ratings] | None, str]:
    """(training ratings, test ratings or a loader for them, a description of the data);
    ``options`` are the reader's (--format, --columns, --sep, --scale, --duplicates)."""
    if (data is None) == (train is None):
        raise ConfigError("give the data with exactly one of --data NAME|PATH or --train FILE (see aerec tune --help)")
    if data is not None:
        if test is not None:
            raise ConfigError("--test goes with --train FILE; with --data use --split SPEC to hold out test ratings")
        if split is None:
            return _read(data, **options), None, f"{data} (all ratings for tuning, no test)"
        from aerec.data.splits import parse_split

        splitter = parse_split(split, seed=seed)  # a bad spec fails before any data is read
        parts = splitter(_read(data, **options))
        return parts.train, parts.test, f"{data}, split {split}"
    if split is not None:
        raise ConfigError("--split goes with --data NAME|PATH; with --train FILE give the test ratings as --test FILE")
    assert train is not None
    # The test file is read only after the search, by the loader, never before.
    loader = (lambda: _read(test, **options)) if test is not None else None
    return _read(train, **options), loader, f"train {train}" + (f", test {test}" if test is not None else "")


def _base_config(config: Path | None, sets: list[str], model: str | None, device: str | None) -> Config:
    overrides = list(sets)
    if model is not None:
        overrides.append(f"model.kind={json.dumps(model)}")
    if device is not None:
        overrides.append(f"run.device={json.dumps(device)}")
    return load_config(config, overrides)


@app.command("tune")
def tune_command(
    ctx: typer.Context,
    data: str | None = DataOption,
    split: str | None = typer.Option(None, "--split", metavar="SPEC", help="Hold out test ratings from --data (u1, random:0.1, ...)."),
    train: Path | None = typer.Option(None, "--train", metavar="FILE", help="Training ratings file (instead of --data)."),
    test: Path | None = typer.Option(None, "--test", metavar="FILE", help="Test ratings, scored once after the search."),
    model: str | None = typer.Option(None, "--model", metavar="NAME", help=f"Rating model family to tune: {family_names('explicit')} "
                                       "(default: autorec, or the config's)."),
    config: Path | None = typer.Option(None, "--config", metavar="FILE.toml", help="Base settings; keys set there are not searched."),
    sets: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Fix a setting (not searched), e.g. model.orientation=user."),
    trials: int = typer.Option(20, "--trials", min=1, metavar="N", help="The most trials."),
    timeout: float | None = typer.Option(None, "--timeout", min=0.001, metavar="S", help="Stop starting trials after S seconds."),
    seed: int | None = typer.Option(None, "--seed", min=0, metavar="S", help="Seed of the sampler, the validation carving and the weights."),
    validation: float = typer.Option(0.1, "--validation", metavar="F", help="Fraction of the training ratings used as the objective."),
    device: str | None = DeviceOption,
    prune: bool = typer.Option(True, "--prune/--no-prune", help="Stop trials worse than the median early."),
    out: Path | None = typer.Option(None, "--out", metavar="DIR", help="Refit the best settings and save the model, best.toml and trials.csv here."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    fmt: str | None = FormatOption,
    columns: str | None = ColumnsOption,
    sep: str | None = SepOption,
    scale: str | None = ScaleOption,
    duplicates: str | None = DuplicatesOption,
) -> None:
    """Search a model's hyper-parameters on validation ratings carved from the training data.

    The test ratings (--split, or --test) never take part in the search: they are scored once,
    at the end, by the best settings refitted on all the training ratings.
    """
    from aerec.cli.common import check_out_dir, stdin_as_file
    from aerec.registry import get_family, is_implicit_kind
    from aerec.tuning import tune

    base = _base_config(config, sets, model, device)
    if is_implicit_kind(base.kind):
        raise ConfigError(f"aerec tune searches rating models only; {base.kind!r} is a top-N model, which "
                          "chooses its epochs (EASE its lambda) on validation users as it trains: aerec train "
                          f"--implicit --model {base.kind}")
    get_family(base.kind)  # an unknown model fails before any data is read
    if out is not None:
        check_out_dir(out)  # before the search, not after it
    seed = base.resolve_run().seed if seed is None else seed
    options = reader_options(fmt, columns, sep, scale, duplicates)
    # '-' reads stdin into a temporary copy that lives as long as the command (the test file is
    # parsed only after the search).
    data, train, test = (ctx.with_resource(stdin_as_file(v, flag))
                         for v, flag in ((data, "--data"), (train, "--train"), (test, "--test")))
    ratings, test_ratings, described = _inputs(data, split, train, test, seed, options)
    if not as_json:
        err_console.print(
            f"tuning [bold]{escape(base.kind)}[/] on {escape(described)}: up to {trials} trial(s)"
            + (f" or {timeout:g} s" if timeout else "") + f", validation {validation:g} of the training ratings, seed {seed}",
            soft_wrap=True,
        )
    result = tune(
        ratings, config=base, n_trials=trials, timeout=timeout, seed=seed, validation=validation,
        test=test_ratings, refit=out is not None, prune=prune, on_trial=_print_trial,  # stderr, --json or not
    )
    if out is not None:
        _save(result, out)
    if as_json:
        payload = result.to_json()
        payload["model_dir"] = str(out) if out is not None else None
        typer.echo(json.dumps(payload, default=json_default))
        return
    err_console.print(_table(result))
    _print_summary(result, out)
    typer.echo(result.config_toml(), nl=False)


def _save(result, out: Path) -> None:
    from aerec.persistence import atomic_write_text

    metrics = {"test": result.test_metrics, "tuning": {k: v for k, v in result.to_json().items() if k != "trials"}}
    result.model.save(out, metrics=metrics)
    atomic_write_text(out / "best.toml", result.config_toml())
    atomic_write_text(out / "trials.csv", result.trials_frame().to_csv(index=False))


def _print_trial(rec) -> None:
    val = "-" if rec.val_rmse is None else f"{rec.val_rmse:.4f}"
    params = ", ".join(f"{k}={_short(v)}" for k, v in rec.params.items())
    err_console.print(
        f"trial {rec.number:>3} {rec.state:<8} val RMSE {val} (epoch {rec.best_epoch}, {rec.epochs} run, "
        f"{rec.seconds:.1f} s) {escape(params)}",
        soft_wrap=True, highlight=False,
    )


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _table(result) -> Table:
    """Trials best first: number, state, validation RMSE, best epoch, epochs run, seconds, parameters."""
    frame = result.trials_frame().drop(columns=["note"]).sort_values(["val_rmse", "trial"], na_position="last")
    table = Table(title=f"aerec tune {result.kind}: trials by validation RMSE", box=box.SIMPLE_HEAD,
                  padding=(0, 1), pad_edge=False, collapse_padding=True)
    headers = {"trial": "#", "state": "state", "val_rmse": "val RMSE", "best_epoch": "best ep", "epochs": "ran", "seconds": "s"}
    for col in frame.columns:
        # "model.l2" -> "l2": the section is clear from the name, and the table must fit a terminal
        # The trial's own figures keep their width; parameter columns give way on a narrow terminal.
        width = {"trial": 2, "state": 8, "val_rmse": 8}.get(col)
        table.add_column(headers.get(col, str(col).split(".", 1)[-1]), justify="left" if col == "state" else "right",
                         min_width=width)
    for row in frame.to_dict("records"):
        cells = [_cell(k, v) for k, v in row.items()]
        table.add_row(*cells, style="bold green" if row["trial"] == result.best_trial else None)
    return table


def _cell(key: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if key == "val_rmse":
        return f"{v:.4f}"
    if key == "seconds":
        return f"{v:.1f}"
    if isinstance(v, float):
        return f"{v:g}" if v.is_integer() else f"{v:.3g}"
    return str(v)


def _print_summary(result, out: Path | None) -> None:
    c = result.counts()
    err_console.print(
        f"best: trial {result.best_trial}, validation RMSE {result.best_value:.4f} at epoch {result.best_epoch} "
        f"({c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed; {result.seconds:.1f} s)",
        soft_wrap=True,
    )
    if result.test_metrics is not None:
        m = result.test_metrics
        err_console.print(
            f"test (best settings refitted on all training ratings, scored once): RMSE {m['rmse']:.4f}, "
            f"MAE {m['mae']:.4f}, rmse_per_user {m['rmse_per_user']:.4f}, n {m['n']}, fallback {m['n_fallback']}",
            soft_wrap=True,
        )
    if out is not None:
        err_console.print(f"saved the model, best.toml and trials.csv to {escape(str(out))}", soft_wrap=True)
    err_console.print("best settings (TOML for aerec train --config) on stdout:")
