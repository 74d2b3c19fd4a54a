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

The work is done by :mod:`aerec.workflows`; the functions here show its results for :mod:`aerec.cli.models`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text

from aerec.cli import err_console, out_console
from aerec.cli.common import facts_table, fmt_value
from aerec.errors import DataError

if TYPE_CHECKING:
    from aerec.workflows import TrainResult

__all__ = ["ease_progress", "parse_new_user_items", "print_evaluation", "print_training_report"]

SHOWN = ("recall@20", "recall@50", "ndcg@100", "hit_rate@20", "precision@20", "mrr@100", "map@100", "coverage@20")


@contextlib.contextmanager
def ease_progress(enabled: bool, fallback: Any = False):
    """A Rich bar over EASE's steps (memory estimate, eigendecomposition, each lambda, the
    weights), as the callable ``ImplicitRecommender.fit(progress=...)`` reports them to;
    ``fallback`` (the trainer's own bar on or off) when disabled."""
    if not enabled:
        yield fallback
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


def print_training_report(result: TrainResult, out: Path) -> None:
    """An implicit model's training report, a table on stderr."""
    plan, metrics, model = result.plan, result.metrics, result.model
    matrix, data = plan.matrix, plan.data
    history = model.train_result_.history
    table = facts_table("aerec train")
    table.add_row("model", escape(plan.kind))
    # Text, not markup: Rich would turn a spec such as user:100:val=100 into an emoji.
    table.add_row("data", Text(data.source + (f" split {data.split}" if data.split else "")))
    table.add_row("positives", f"{matrix.nnz:,} ({plan.positives}; {matrix.n_users:,} users x {matrix.n_items:,} items)")
    if metrics["epochs_run"] is not None:  # a neural model (EASE's history is its lambda search)
        epochs = f"{metrics['epochs_run']} run, best {fmt_value(metrics['best_epoch'])} ({metrics['stopped']})"
        table.add_row("epochs", epochs)
    if plan.kind == "ease":
        how = "chosen on validation" if len(history) > 1 else "as set"
        table.add_row("l2 (lambda)", f"{model.params_.l2:g} ({how})")
    table.add_row(f"validation {model.val_metric_}", fmt_value(model.train_result_.best_val))
    if result.tested:
        _metric_rows(table, metrics)
    else:
        table.add_row("test", "none (add --split SPEC or --test FILE to evaluate)")
    table.add_row("fit time", f"{result.fit_seconds:.1f} s")
    table.add_row("saved to", escape(str(out)))
    err_console.print(table)


def _metric_rows(table, metrics: dict[str, Any]) -> None:
    new, known = metrics.get("n_new_users") or 0, metrics.get("n_known_users") or 0
    how = ", ".join(p for p in (f"{new:,} new (80 % folded in)" if new else "",
                                f"{known:,} known (training rows as input)" if known else "") if p)
    table.add_row("test users", f"{metrics['n_users']:,} ({how}); {metrics['n_held_out']:,} held-out positives")
    for key in SHOWN:
        table.add_row(key, fmt_value(metrics.get(key)))


def print_evaluation(model_dir: Path, source: str, metrics: dict[str, Any]) -> None:
    """``aerec evaluate``'s table for an implicit model: its ranking metrics."""
    table = facts_table(f"aerec evaluate {escape(str(model_dir))}")
    table.add_row("test", Text(source))
    _metric_rows(table, metrics)
    out_console.print(table)  # the result itself: stdout, so `> file` keeps it


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
