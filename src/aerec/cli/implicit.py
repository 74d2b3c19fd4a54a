"""The implicit-feedback side of ``aerec train | evaluate | recommend`` (docs/implicit.md).

``train`` switches here for ``--implicit``, for an implicit model (``--model multvae``, ``multdae``,
``cdae``, ``recvae``, ``ease``, ``popularity``) and for event data without ``--model`` (default ``ease``;
``multvae`` past 20,000 items). Ratings at or above
``--threshold`` are the positives (default 4 on 1..5, 3.5 on half stars); event files are
positives as they are. The test set of a split is evaluated by ranking:

* users the model trained on (``--split peruser:0.2``, ``--test`` with the training users):
  their training positives are the input, their test positives the items to find;
* users it never saw (``--split user:0.1:val=0.1``, strong generalization): 80 % of their
  positives are folded in, the other 20 % ranked (drawn with the run's seed, so ``train`` and
  a later ``evaluate`` agree).

The functions here are called by :mod:`aerec.cli.models`; they only turn flags into library calls.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.text import Text

from aerec import distributed
from aerec.cli import err_console
from aerec.config import Config
from aerec.data.ratings import Ratings
from aerec.errors import ConfigError, DataError
from aerec.implicit.families import DEFAULT_IMPLICIT, IMPLICIT_FAMILIES, default_implicit_kind, is_implicit_kind
from aerec.ranking import DEFAULT_METRICS

__all__ = ["evaluate_implicit", "is_implicit_run", "parse_new_user_items", "read_train_data", "train_implicit"]

SHOWN = ("recall@20", "recall@50", "ndcg@100", "hit_rate@20", "precision@20", "mrr@100", "map@100", "coverage@20")


def read_train_data(data, train_file, test_file, split, options, seed: int, implicit: bool):
    """``_train_data`` of :mod:`aerec.cli.models`; with ``--implicit`` a file whose columns
    name no rating is read as events instead of refused."""
    from aerec.cli.models import _train_data

    try:
        return _train_data(data, train_file, test_file, split, options, seed)
    except DataError as exc:
        if not implicit or "no rating column" not in str(exc):
            raise
    return _train_data(data, train_file, test_file, split, {**options, "implicit": True}, seed)


def is_implicit_run(config: Config, train: Ratings, implicit_flag: bool, threshold: float | None) -> bool:
    """Whether ``train`` trains an implicit model; fills in the default kind. ConfigError for
    contradictions (``--implicit --model autorec``, ``--threshold`` with a rating model)."""
    kind = config.model.get("kind")
    implicit = implicit_flag or is_implicit_kind(kind) or (kind is None and train.implicit)
    if implicit and kind is not None and not is_implicit_kind(kind):
        raise ConfigError(
            f"--implicit trains a top-N model on positives, and {kind!r} is a rating model; choose one of "
            f"{', '.join(IMPLICIT_FAMILIES)} (or leave --model out for {DEFAULT_IMPLICIT})"
        )
    if not implicit and threshold is not None:
        raise ConfigError("--threshold goes with implicit models: add --implicit, or choose --model multvae, ease, ...")
    if implicit and kind is None:
        config.model["kind"] = default_implicit_kind(train.n_items)
    return implicit


@contextlib.contextmanager
def _ease_bar(enabled: bool):
    """A Rich bar over EASE's steps (memory estimate, eigendecomposition, each lambda, the
    weights), as the callable ``ImplicitRecommender.fit(progress=...)`` reports them to; None
    when disabled."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("EASE {task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f}"),
                  TimeElapsedColumn(), console=err_console) as bar:
        task = bar.add_task("", total=1)

        def step(what: str, done: int, total: int) -> None:
            if done == 0:  # the memory estimate, said before the long steps start
                err_console.print(f"EASE: {escape(what)}")
            bar.update(task, description=escape(what), completed=done, total=total)

        yield step


def train_implicit(config: Config, parts, *, out: Path, threshold: float | None, checkpoint_dir: Path | None,
                   resume: bool, progress: bool, as_json: bool) -> None:
    """Fit, evaluate (when the split has a test part), save and report an implicit model."""
    from aerec.cli.models import (
        _check_resume, _facts_table, _finite, _fmt, _run_identity, _write_identity, default_checkpoint_dir,
    )
    from aerec.implicit import ImplicitRecommender, implicit_matrix

    model = ImplicitRecommender(config=config)
    model.resolved()  # unknown or bad settings fail before any work
    model.check_settings_apply()  # --epochs for EASE is refused, not silently dropped
    matrix, t = implicit_matrix(parts.train, threshold)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir(out)
    identity = _run_identity(model, matrix.fingerprint())
    if resume:
        _check_resume(ckpt, identity)
    elif ckpt.exists() and checkpoint_dir is None and distributed.is_main():
        shutil.rmtree(ckpt, ignore_errors=True)  # a stale checkpoint of an earlier run
    if distributed.is_main():  # under torchrun rank 0 writes every file (docs/distributed.md)
        _write_identity(ckpt, identity)
    distributed.barrier()
    what = "events" if parts.train.implicit else f"ratings >= {t:g}"
    if not as_json and distributed.is_main():
        err_console.print(
            f"Training [bold]{escape(config.kind)}[/] on {matrix.nnz:,} positives ({what}; {matrix.n_users:,} users x "
            f"{matrix.n_items:,} items) from {escape(parts.source)}", soft_wrap=True,
        )
    started = time.perf_counter()
    with _ease_bar(progress and config.kind == "ease" and distributed.is_main()) as bar:
        model.fit(parts.train, parts.validation, threshold=threshold, progress=bar or progress, checkpoint_dir=ckpt,
                  resume=resume)
    fit_seconds = time.perf_counter() - started
    if not distributed.is_main():
        return  # every process holds the same model; rank 0 evaluates, saves and reports
    test = model.evaluate(parts.test) if parts.test is not None else {}

    result = model.train_result_
    neural = bool(result.history) and config.kind != "ease"  # EASE's history is its lambda search
    metrics: dict[str, Any] = {
        "model": config.kind, "preset": config.model.get("preset"), "task": "implicit",
        "data": parts.source, "split": parts.split, "test": parts.test_source,
        "threshold": None if parts.train.implicit else t, "n_train": matrix.nnz, "n_train_users": matrix.n_users,
        "val_metric": model.val_metric_, "best_epoch": result.best_epoch if neural else None,
        f"best_val_{model.val_metric_}": result.best_val, "epochs_run": len(result.history) if neural else None,
        "stopped": result.stopped if neural else None, "fit_seconds": round(fit_seconds, 3),
    }
    if config.kind == "ease":
        metrics["l2"] = model.params_.l2
    for key in (*DEFAULT_METRICS, "n_users", "n_held_out", "n_new_users", "n_known_users", "n_unknown_items"):
        metrics[key] = test.get(key)
    metrics = _finite(metrics)
    model.save(out, metrics=metrics)
    if checkpoint_dir is None:
        shutil.rmtree(ckpt, ignore_errors=True)

    if as_json:
        typer.echo(json.dumps({**metrics, "out": str(out)}))
        return
    table = _facts_table("aerec train")
    table.add_row("model", escape(config.kind))
    # Text, not markup: Rich would turn a spec such as user:100:val=100 into an emoji.
    table.add_row("data", Text(parts.source + (f" split {parts.split}" if parts.split else "")))
    table.add_row("positives", f"{matrix.nnz:,} ({what}; {matrix.n_users:,} users x {matrix.n_items:,} items)")
    if neural:
        epochs = f"{metrics['epochs_run']} run, best {_fmt(metrics['best_epoch'])} ({metrics['stopped']})"
        table.add_row("epochs", epochs)
    if config.kind == "ease":
        how = "chosen on validation" if len(result.history) > 1 else "as set"
        table.add_row("l2 (lambda)", f"{model.params_.l2:g} ({how})")
    table.add_row(f"validation {model.val_metric_}", _fmt(result.best_val))
    if test:
        _metric_rows(table, metrics)
    else:
        table.add_row("test", "none (add --split SPEC or --test FILE to evaluate)")
    table.add_row("fit time", f"{fit_seconds:.1f} s")
    table.add_row("saved to", escape(str(out)))
    err_console.print(table)


def _metric_rows(table, metrics: dict[str, Any]) -> None:
    from aerec.cli.models import _fmt

    new, known = metrics.get("n_new_users") or 0, metrics.get("n_known_users") or 0
    how = ", ".join(p for p in (f"{new:,} new (80 % folded in)" if new else "",
                                f"{known:,} known (training rows as input)" if known else "") if p)
    table.add_row("test users", f"{metrics['n_users']:,} ({how}); {metrics['n_held_out']:,} held-out positives")
    for key in SHOWN:
        table.add_row(key, _fmt(metrics.get(key)))


def evaluate_implicit(model, model_dir: Path, test_file: Path | None, data: str | None, split: str | None,
                      options: dict[str, Any], as_json: bool) -> None:
    """``aerec evaluate`` for an implicit model: ranking metrics on a test file or a split's test part."""
    from aerec.cli.models import _facts_table, _finite
    from aerec.data.registry import load_dataset
    from aerec.data.splits import parse_split
    from aerec.implicit import implicit_matrix

    if test_file is not None:
        test = load_dataset(Path(test_file), **{"scale": model.scale_, **options})
        source = str(test_file)
    else:
        _, _, run = model.resolved()
        parts = parse_split(split, seed=run.seed)(load_dataset(data, **options))
        test, source = parts.test, f"{data} split {parts.name or split}"
        trained_on, _ = implicit_matrix(parts.train, None if parts.train.implicit else model.threshold_)
        if trained_on.fingerprint() != model.fingerprint_:
            warnings.warn(
                f"{model_dir} was not trained on this split's training part: its test users or items may have been "
                "seen in training, which makes the figures optimistic", stacklevel=1,
            )
    if len(test) == 0:
        raise DataError("the test set is empty", path=source, fix="choose a split with a test part")
    metrics = _finite(model.evaluate(test))
    if as_json:
        typer.echo(json.dumps(metrics))
        return
    table = _facts_table(f"aerec evaluate {escape(str(model_dir))}")
    table.add_row("test", Text(source))
    _metric_rows(table, metrics)
    err_console.print(table)


def parse_new_user_items(text: str) -> list[str]:
    """A new user's items from ``"50,172,133"`` or a file with one item a line (its first
    field; a header line is kept only if it names a known item, so it does no harm)."""
    path = Path(text).expanduser()
    if path.is_file():
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read the file ({exc})", path=str(path), fix="give a UTF-8 text file") from None
        items = [line.replace("\t", ",").replace(";", ",").split(",")[0].strip() for line in lines]
    else:
        if "=" in text:
            raise DataError("--items takes item ids only", value=text,
                            fix='give "50,172,133", or item=rating pairs with --ratings')
        items = [part.strip() for part in text.split(",")]
    items = [i for i in items if i]
    if not items:
        raise DataError("--items holds no items", value=text, fix='give item ids such as "50,172,133"')
    return items
