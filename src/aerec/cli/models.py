"""``aerec train | evaluate | predict | recommend``: thin commands over :mod:`aerec.workflows`.

Everything these commands do lives in the library (reading data, splitting, training,
evaluating, saving; the workflows hold each command's steps); this module only turns flags into library calls and results into tables
(stderr) or one JSON object (stdout). Wrong combinations of flags are :class:`ConfigError`s
(exit 2) that say what to use instead; bad data is a :class:`DataError` naming file and line.

Configuration precedence for ``train`` (later wins)::

    family defaults < --preset < --config FILE.toml < shortcut flags < --set key=value

where the shortcut flags are ``--model`` (model.kind), ``--preset`` (model.preset),
``--epochs`` (train.epochs), ``--batch-size`` (train.batch_size), ``--online``
(train.batch_size=1), ``--lr`` (train.lr), ``--seed`` (run.seed), ``--device`` (run.device)
and ``--threads`` (run.threads).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from aerec.cli import app, err_console, out_console
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
    ProgressOption,
    ScaleOption,
    SepOption,
    SetOption,
    TasteOption,
    build_config,
    count_bar,
    check_out_dir,
    check_writable,
    facts_table,
    finite,
    fmt_value,
    known_label,
    load_model,
    reader_options,
    stdin_as_file,
    warnings_to_console,
    with_synthetic,
)
from aerec.errors import ConfigError, DataError
from aerec.registry import family_names

if TYPE_CHECKING:
    from aerec.data.ratings import Ratings
    from aerec.workflows import Recommendations, TrainingPlan, TrainResult

# numpy, torch, pandas and the library's heavy modules (aerec.workflows among them) are
# imported inside the commands that use them: ``aerec --help`` and ``aerec COMMAND --help``
# then start in a fraction of a second.

__all__ = [
    "check_out_dir", "check_writable", "default_checkpoint_dir", "default_model", "parse_new_user_ratings",
    "stdin_as_file",
]

# Files the reader understands when a new user's ratings are given as a file.
_NEW_USER_SEPARATORS = ("\t", ",", ";", "|", "::")


def default_checkpoint_dir(out: Path) -> Path:
    """Where ``train --out DIR`` keeps its checkpoints unless told: a hidden sibling ``.DIR.ckpt``."""
    from aerec.workflows import default_checkpoint_dir

    return default_checkpoint_dir(out)


def default_model(ratings: Ratings) -> str:
    """The model ``aerec train`` uses when ``--model`` is not given: the best default for the data's kind."""
    from aerec.workflows import default_model

    return default_model(ratings)


def parse_new_user_ratings(text: str) -> dict[Any, float]:
    """A new user's ratings from ``"item=rating,..."`` or from a file.

    A file holds one rating a line, either ``item,rating`` or ``user,item,rating[,...]`` (lines cut
    from a ratings file; they must all be one user's), separated by a tab, comma, semicolon,
    pipe, ``::`` or spaces; a header line is skipped. Raises :class:`DataError` naming the bad
    part (and the file and line).
    """
    path = Path(text).expanduser()
    if path.is_file():
        return _ratings_from_file(path)
    if "=" not in text:
        raise DataError(
            "--ratings is neither a file nor item=rating pairs", value=text,
            fix='give a file of item,rating lines, or pairs such as "50=5,172=4,133=1"',
        )
    out: dict[Any, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        item, sep, value = part.rpartition("=")
        rating = _number(value)
        if not sep or not item.strip() or rating is None:
            raise DataError(
                "cannot read an item=rating pair in --ratings", value=part,
                fix='write pairs such as "50=5,172=4" (item id, =, a number)',
            )
        if item.strip() in out:
            raise DataError("--ratings rates one item twice", value=item.strip(), fix="give each item once")
        out[item.strip()] = rating
    if not out:
        raise DataError("--ratings holds no ratings", value=text, fix='write pairs such as "50=5,172=4"')
    return out


def _ratings_from_file(path: Path) -> dict[Any, float]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the file ({exc})", path=str(path), fix="give a UTF-8 text file") from None
    numbered = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise DataError("the file holds no ratings", path=str(path), fix="write one item,rating pair a line")
    sep = next((s for s in _NEW_USER_SEPARATORS if s in numbered[0][1]), None)
    out: dict[Any, float] = {}
    users: set[str] = set()
    for k, (n, line) in enumerate(numbered):
        fields = [f.strip() for f in (line.split(sep) if sep else line.split())]
        if len(fields) < 2:
            raise DataError("expected item,rating (or user,item,rating)", path=str(path), line=n, value=line,
                            fix="write one item,rating pair a line")
        item, value = (fields[0], fields[1]) if len(fields) == 2 else (fields[1], fields[2])
        rating = _number(value)
        if rating is None:
            if k == 0:  # a header line
                continue
            raise DataError("the rating is not a number", path=str(path), line=n, value=value,
                            fix="write one item,rating pair a line")
        if len(fields) > 2:
            users.add(fields[0])
            if len(users) > 1:
                raise DataError("the file holds ratings of more than one user", path=str(path), line=n,
                                value=fields[0], fix="give one user's ratings (item,rating lines)")
        if item in out:
            raise DataError("the file rates one item twice", path=str(path), line=n, value=item,
                            fix="give each item once")
        out[item] = rating
    if not out:
        raise DataError("the file holds no ratings", path=str(path), fix="write one item,rating pair a line")
    return out


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# ----------------------------------------------------------------------------- train
def _check_train_flags(data, train_file, test_file, split) -> None:
    if data is not None and train_file is not None:
        raise ConfigError("give either --data NAME|PATH or --train FILE, not both")
    if data is None and train_file is None:
        raise ConfigError(
            "say what to train on: --data NAME|PATH (a dataset name or a ratings file; add --split SPEC "
            "to hold out a test set) or --train FILE [--test FILE]"
        )
    if test_file is not None and train_file is None:
        raise ConfigError("--test goes with --train FILE; with --data, hold out a test set with --split SPEC")
    if split is not None and test_file is not None:
        raise ConfigError("--split and --test both name the test set: give one of them")


# train's options, named here so that the command's signature reads as a list of flags.
OutOption = typer.Option(..., "--out", help="Model directory to write (replaced atomically).")
SplitOption = typer.Option(
    None, "--split", metavar="SPEC", help="Hold out a test set: u1..u5, random:0.1, peruser:0.2, ... "
    "(seeded with --seed unless the spec says seed=)."
)
TrainFileOption = typer.Option(None, "--train", metavar="FILE", help="Training ratings file (- for stdin).")
TestFileOption = typer.Option(
    None, "--test", metavar="FILE", help="Test ratings file (read with the training file's options)."
)
ModelOption = typer.Option(
    None, "--model", metavar="NAME",
    help=f"Model family: {family_names('explicit')}; implicit: {family_names('implicit')} "
    "(default: best for the data).",
)
ImplicitOption = typer.Option(
    False, "--implicit", help="Train a top-N model on implicit feedback: ratings >= --threshold are positives "
    "(a file with no rating column is read as events). Default model: easedae (multvae past 20,000 items). See docs/implicit.md.",
)
ThresholdOption = typer.Option(
    None, "--threshold", help="Implicit models: the lowest rating that is a positive (default 4 on 1..5, "
    "3.5 on half stars)."
)
BatchSizeOption = typer.Option(None, "--batch-size", help="Rows per update (train.batch_size; 0 = full batch).")
OnlineOption = typer.Option(False, "--online", help="One row per update, as in the course (train.batch_size=1).")
LrOption = typer.Option(None, "--lr", help="Learning rate (train.lr).")
SeedOption = typer.Option(None, "--seed", help="Random seed for weights, shuffling, validation and --split.")
ThreadsOption = typer.Option(None, "--threads", help="CPU threads (run.threads; 0 = automatic).")
CheckpointDirOption = typer.Option(
    None, "--checkpoint-dir", metavar="DIR", help="Checkpoint folder (default: .OUT.ckpt next to --out, "
    "removed after a successful save)."
)
ResumeOption = typer.Option(False, "--resume", help="Continue from the last checkpoint of the same run.")
ItemsFileOption = typer.Option(
    None, "--items", metavar="FILE", help="Item metadata: a CSV/TSV/Parquet file with an id column and a title "
    "(optional genres, |-separated, and other columns); the titles show in recommend, similar, the API and the page.",
    rich_help_panel="Reading files",
)


@app.command("train")
def train_command(
    out: Path = OutOption,
    data: str | None = DataOption,
    split: str | None = SplitOption,
    train_file: Path | None = TrainFileOption,
    test_file: Path | None = TestFileOption,
    model: str | None = ModelOption,
    implicit: bool = ImplicitOption,
    threshold: float | None = ThresholdOption,
    preset: str | None = PresetOption,
    config_file: Path | None = ConfigFileOption,
    sets: list[str] | None = SetOption,
    epochs: int | None = EpochsOption,
    batch_size: int | None = BatchSizeOption,
    online: bool = OnlineOption,
    lr: float | None = LrOption,
    device: str | None = DeviceOption,
    seed: int | None = SeedOption,
    threads: int | None = ThreadsOption,
    checkpoint_dir: Path | None = CheckpointDirOption,
    resume: bool = ResumeOption,
    progress: bool = ProgressOption,
    fmt: str | None = FormatOption,
    columns: str | None = ColumnsOption,
    sep: str | None = SepOption,
    scale: str | None = ScaleOption,
    duplicates: str | None = DuplicatesOption,
    n_ratings: int | None = NRatingsOption,
    taste: float | None = TasteOption,
    items_file: Path | None = ItemsFileOption,
    as_json: bool = JsonOption,
) -> None:
    """Train a model and save it to --out; evaluate it when a test set is known.

    Settings, later wins: model defaults < --preset < --config < shortcut flags (--epochs,
    --batch-size, --online, --lr, --seed, --device, --threads, --model) < --set key=value.
    """
    from aerec import distributed, workflows

    _check_train_flags(data, train_file, test_file, split)
    _check_output_flags(out, checkpoint_dir)
    if online and batch_size not in (None, 1):
        raise ConfigError(
            f"--online means one row per update (batch size 1); it contradicts --batch-size {batch_size}"
        )
    shortcuts = {
        "model": {"kind": model, "preset": preset},
        "train": {"epochs": epochs, "batch_size": 1 if online else batch_size, "lr": lr},
        "run": {"seed": seed, "device": device, "threads": threads},
    }
    config = build_config(config_file, shortcuts, sets)
    workflows.prepare_run(config)  # a device this machine lacks fails before anything is read or written
    options = with_synthetic(reader_options(fmt, columns, sep, scale, duplicates), data, n_ratings, taste)

    with warnings_to_console():
        with distributed.main_first():  # rank 0 downloads a dataset once
            parts = _read_train_data(data, train_file, test_file, split, options, config.resolve_run().seed, implicit,
                                     items_file)
        plan = workflows.plan_training(config, parts, implicit=implicit, threshold=threshold,
                                       scale_declared=scale is not None)
        with _progress_for(plan, progress) as fit_progress:
            result = workflows.run_training(plan, out=out, checkpoint_dir=checkpoint_dir, resume=resume,
                                            progress=fit_progress, on_start=None if as_json else _print_start)
    if result is None:
        return  # under torchrun, a process other than the first: it neither saves nor reports
    if as_json:
        typer.echo(json.dumps({**result.metrics, "out": str(out)}))
    elif plan.implicit:
        from aerec.cli.implicit import print_training_report

        print_training_report(result, out)
    else:
        _print_training_report(result, out, scale_declared=scale is not None)


def _check_output_flags(out: Path, checkpoint_dir: Path | None) -> None:
    """Refuse output places that cannot be written before any work."""
    check_out_dir(out)
    if checkpoint_dir is not None:
        if Path(checkpoint_dir).is_file():
            raise ConfigError(f"--checkpoint-dir {checkpoint_dir} is a file; give a folder for the checkpoints")
        check_writable(checkpoint_dir, "--checkpoint-dir")


def _read_train_data(data, train_file, test_file, split, options, seed: int, implicit: bool, items=None):
    """The training data of ``--data``, ``--train`` and ``--test``, where '-' reads stdin (a copy
    lives until the data is read, and messages name <stdin>)."""
    import contextlib
    import dataclasses

    from aerec.workflows import read_train_data

    with contextlib.ExitStack() as inputs:
        data_in = inputs.enter_context(stdin_as_file(data, "--data"))
        train_in = inputs.enter_context(stdin_as_file(train_file, "--train"))
        test_in = inputs.enter_context(stdin_as_file(test_file, "--test"))
        parts = read_train_data(data_in, train_in, test_in, split, options, seed, implicit, items=items)
    if "-" in (data, str(train_file)):
        parts = dataclasses.replace(parts, source="<stdin>")
    return parts


def _progress_for(plan: TrainingPlan, progress: bool):
    """What ``fit`` reports progress to: a bar over EASE's steps, or the trainer's own bar."""
    import contextlib

    from aerec import distributed

    if plan.implicit:
        from aerec.cli.implicit import ease_progress

        return ease_progress(progress and plan.kind == "ease" and distributed.is_main(), fallback=progress)
    return contextlib.nullcontext(progress)


def _print_start(plan: TrainingPlan) -> None:
    matrix, data = plan.matrix, plan.data
    if plan.implicit:
        what = f"{matrix.nnz:,} positives ({plan.positives}; {matrix.n_users:,} users x {matrix.n_items:,} items)"
    else:
        what = f"{len(data.train):,} ratings ({matrix.n_users:,} users x {matrix.n_items:,} items)"
    err_console.print(f"Training [bold]{escape(plan.kind)}[/] on {what} from {escape(data.source)}", soft_wrap=True)


def _print_training_report(result: TrainResult, out: Path, *, scale_declared: bool) -> None:
    """The rating model's training report, a table on stderr."""
    plan, metrics = result.plan, result.metrics
    matrix, data = plan.matrix, plan.data
    table = facts_table("aerec train")
    preset_note = f" (preset {plan.config.model['preset']})" if plan.config.model.get("preset") else ""
    table.add_row("model", escape(plan.kind + preset_note))
    table.add_row("data", escape(data.source) + (f" split {escape(data.split)}" if data.split else ""))
    table.add_row("train ratings", f"{len(data.train):,} ({matrix.n_users:,} users x {matrix.n_items:,} items)")
    table.add_row("rating scale", escape(str(matrix.scale)) + (" (declared)" if scale_declared else ""))
    refit = f"; refit {metrics['refit_epochs']} on all ratings" if metrics["refit_epochs"] else ""
    if refit and isinstance(metrics["refit_epochs"], int) and plan.model.resolved()[1].refit_start == "selected":
        refit = f"; {metrics['refit_epochs']} more on all ratings"  # from the best epoch's weights
    table.add_row("epochs", f"{metrics['epochs_run']} run, best {fmt_value(metrics['best_epoch'])} ({metrics['stopped']}){refit}")
    table.add_row("validation RMSE", fmt_value(metrics["best_val_rmse"]))
    if result.tested:
        table.add_row("test ratings", f"{metrics['n']:,} ({metrics['n_fallback']:,} by fallback)")
        table.add_row("test RMSE", fmt_value(metrics["rmse"]))
        table.add_row("test MAE", fmt_value(metrics["mae"]))
        table.add_row("test RMSE per user", fmt_value(metrics["rmse_per_user"]))
        table.add_row("test precision@10", f"{fmt_value(metrics['precision@10'])} (NDCG@10 {fmt_value(metrics['ndcg@10'])}; "
                      f"relevant = ratings >= {metrics['relevant_from']:g})")
    else:
        table.add_row("test", "none (add --split SPEC or --test FILE to evaluate)")
    table.add_row("fit time", f"{result.fit_seconds:.1f} s")
    table.add_row("saved to", escape(str(out)))
    err_console.print(table)


# ----------------------------------------------------------------------------- evaluate
@app.command("evaluate")
def evaluate_command(
    model_dir: Path = typer.Argument(..., metavar="DIR", help="A model directory written by aerec train."),
    test_file: Path | None = typer.Option(None, "--test", metavar="FILE", help="Test ratings file."),
    data: str | None = typer.Option(
        None, "--data", metavar="NAME|PATH", help="A dataset name or ratings file (with --split)."
    ),
    split: str | None = typer.Option(
        None, "--split", metavar="SPEC", help="Evaluate on this split's test part (seeded with the model's seed "
        "unless the spec says seed=, so it matches training)."
    ),
    fmt: str | None = FormatOption,
    columns: str | None = ColumnsOption,
    sep: str | None = SepOption,
    scale: str | None = ScaleOption,
    duplicates: str | None = DuplicatesOption,
    n_ratings: int | None = NRatingsOption,
    taste: float | None = TasteOption,
    k: int = typer.Option(10, "--k", metavar="K", help="Rating models: the list length of precision@K, recall@K, NDCG@K."),
    relevant: float | None = typer.Option(
        None, "--relevant", metavar="RATING", help="Rating models: the lowest test rating that counts as relevant "
        "for the ranking metrics (default: the scale's liked level, 4 on 1..5, 3.5 on half stars)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """RMSE, MAE, per-user RMSE and the fallback count of a saved model on test ratings, and
    precision@K, recall@K and NDCG@K of its top-K lists (relevant: test ratings >= --relevant;
    candidates: every item with training ratings that the user did not rate in training).

    Implicit models report ranking metrics instead (recall@20, recall@50, ndcg@100, ...): test
    users the model knows rank their test positives given their training ones; new users fold
    in 80 % of their positives (seeded with the model's seed) and rank the rest.
    """
    from aerec import workflows

    if (test_file is None) == (data is None):
        raise ConfigError("give the test ratings with either --test FILE or --data NAME --split SPEC")
    if data is not None and split is None:
        raise ConfigError("--data needs --split SPEC: evaluate on the split's test part, never on training data")
    if split is not None and test_file is not None:
        raise ConfigError("--split goes with --data NAME; --test FILE is already the test set")
    options = with_synthetic(reader_options(fmt, columns, sep, scale, duplicates), data, n_ratings, taste)
    model = load_model(model_dir)
    with warnings_to_console(), stdin_as_file(test_file, "--test") as test_in:
        test, source = workflows.read_test_data(
            model, test_file=test_in, data=data, split=split, options=options, name=str(model_dir),
            source="<stdin>" if str(test_file) == "-" else None,
        )
        metrics = workflows.evaluate(model, test, k=k, relevant=relevant)
    if as_json:
        typer.echo(json.dumps(metrics))
    elif not model.predicts_ratings:  # a top-N model is judged by its ranking metrics
        from aerec.cli.implicit import print_evaluation

        print_evaluation(model_dir, source, metrics)
    else:
        _print_evaluation(model_dir, source, metrics, k)


def _print_evaluation(model_dir: Path, source: str, metrics: dict[str, Any], k: int) -> None:
    """``aerec evaluate``'s table for a rating model."""
    table = facts_table(f"aerec evaluate {escape(str(model_dir))}")
    table.add_row("test", escape(source))
    table.add_row("ratings", f"{metrics['n']:,} ({metrics['n_fallback']:,} by fallback, "
                  f"{fmt_value(metrics['fallback_fraction'] * 100, 1)} %)")
    table.add_row("RMSE", fmt_value(metrics["rmse"]))
    table.add_row("MAE", fmt_value(metrics["mae"]))
    table.add_row("RMSE per user", fmt_value(metrics["rmse_per_user"]))
    table.add_row(f"top-{k} lists", f"{metrics['n_ranked_users']:,} users; relevant = test ratings >= "
                  f"{metrics['relevant_from']:g}")
    for name in ("precision", "recall", "ndcg"):
        table.add_row(f"{'NDCG' if name == 'ndcg' else name}@{k}", fmt_value(metrics[f"{name}@{k}"]))
    out_console.print(table)  # the result itself: stdout, so `> file` keeps it


# ----------------------------------------------------------------------------- predict
@app.command("predict")
def predict_command(
    model_dir: Path = typer.Argument(..., metavar="DIR", help="A model directory written by aerec train."),
    pairs: Path = typer.Option(
        ..., "--pairs", metavar="FILE", help="(user, item) rows, csv/tsv, header or not, - for stdin; a ratings "
        "file works too (its ratings are ignored)."
    ),
    out_file: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write the CSV here (default, or -: stdout)."
    ),
    columns: str | None = ColumnsOption,
    sep: str | None = SepOption,
) -> None:
    """Predicted ratings for (user, item) pairs, as CSV user,item,prediction,fallback.

    The fallback column is 1 where the user or the item was unseen in training and the bias
    model predicted instead. Predictions are clipped to the model's rating scale.
    """
    from aerec import workflows
    from aerec.persistence import atomic_write_text

    if out_file is not None and str(out_file) == "-":
        out_file = None  # '-' is stdout
    if out_file is not None:  # before any work
        out_file = Path(out_file)
        if out_file.is_dir():
            raise ConfigError(f"--out {out_file} is a folder; give a file name, e.g. {out_file / 'predictions.csv'}")
        check_writable(out_file, "--out")
    model = load_model(model_dir)
    with warnings_to_console(), stdin_as_file(pairs, "--pairs") as pairs_in:
        frame, n_fallback = workflows.predict_file(model, pairs_in, reader_options(None, columns, sep, None, None))
    text = frame.to_csv(index=False, float_format="%.4f", lineterminator="\n")
    if out_file is None:
        typer.echo(text, nl=False)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_file, text)
    err_console.print(
        f"{len(frame):,} predictions ({n_fallback:,} by fallback) written to {escape(str(out_file))}",
        soft_wrap=True,
    )


# ----------------------------------------------------------------------------- recommend
@app.command("recommend")
def recommend_command(
    model_dir: Path = typer.Argument(..., metavar="DIR", help="A model directory written by aerec train."),
    user: str | None = typer.Option(None, "--user", metavar="ID", help="A user the model was trained on."),
    ratings: str | None = typer.Option(
        None, "--ratings", metavar='FILE|"item=rating,..."',
        help='A new user\'s ratings: a file of item,rating lines, or pairs such as "50=5,172=4".',
    ),
    items: str | None = typer.Option(
        None, "--items", metavar='FILE|"item,item,..."',
        help="Implicit models: a new user's items (each a positive), e.g. \"50,172,133\", or a file of one item a line.",
    ),
    n: int = typer.Option(10, "-n", "--n", help="How many items to recommend."),
    include_rated: bool = typer.Option(
        False, "--include-rated", help="With --user or --all-users: also rank items the user rated."
    ),
    all_users: bool = typer.Option(
        False, "--all-users", help="Top-N of every user the model knows (or of --users FILE) to --out FILE."
    ),
    users_file: Path | None = typer.Option(
        None, "--users", metavar="FILE", help="With --all-users: only these users (one id a line, or a CSV with a "
        "user column).",
    ),
    out_file: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="With --all-users: the .csv or .parquet file to write (by its suffix)."
    ),
    chunk: int = typer.Option(1024, "--chunk", help="With --all-users: users scored at a time (bounds memory)."),
    explain: bool = typer.Option(False, "--explain", help="Say for each item which of the user's rated items "
                                 "pushed it up most (\"because you liked\"; docs/explanations.md)."),
    explain_top: int | None = typer.Option(None, "--explain-top", metavar="N",
                                           help="With --explain: at most N rated items per recommendation (default 3)."),
    progress: bool = ProgressOption,
    as_json: bool = JsonOption,
) -> None:
    """Top-N items for a known user (--user) or for a brand-new one (--ratings, or --items for
    implicit models), without retraining; or for every user to a file (--all-users --out FILE)."""
    from aerec import workflows

    because = _explain_count(explain, explain_top, to_file := bool(all_users or users_file or out_file))
    if to_file:
        _recommend_all(model_dir, user, ratings, items, n, include_rated, all_users, users_file, out_file, chunk,
                       progress, as_json)
        return
    _check_one_user(user, ratings, items, include_rated, n)
    with stdin_as_file(ratings, "--ratings") as ratings_in:  # '-': a file of item,rating lines on stdin
        new_ratings = parse_new_user_ratings(ratings_in) if ratings_in is not None else None
    if items is not None:
        from aerec.cli.implicit import parse_new_user_items

        new_ratings = parse_new_user_items(items)
    model = load_model(model_dir)
    if items is not None and model.predicts_ratings:
        raise ConfigError(f"--items is for implicit models; {model_dir} predicts ratings: give --ratings \"item=rating,...\"")
    if user is not None and user.strip() not in model.users_:
        raise DataError(
            f"unknown user: {model_dir} was not trained on this user", value=user,
            fix='give a user of the training data, or a new user\'s ratings with --ratings "item=rating,..."',
        )
    with warnings_to_console():
        top = workflows.recommend(model, user=None if user is None else user.strip(), new_ratings=new_ratings, n=n,
                                  include_rated=include_rated, explain=because)
    if as_json:
        known = known_label(model.users_, user.strip()) if user is not None else None
        doc: dict[str, Any] = {"user": known, "recommendations": top.items}
        if new_ratings is not None:
            doc["ratings_given"] = top.ratings_used  # the items the model knows (the others were warned about)
        typer.echo(json.dumps(finite(doc)))
        return
    what = "items" if items is not None else "ratings"
    used = top.ratings_used
    who = f"user {user}" if user is not None else f"a new user with {used} {what[:-1] if used == 1 else what}"
    _print_recommendations(top, f"top {n} for {who}")


def _check_one_user(user: str | None, ratings: str | None, items: str | None, include_rated: bool, n: int) -> None:
    """Refuse a top-N request that names no user, or more than one, before the model loads."""
    given = sum(x is not None for x in (user, ratings, items))
    if given != 1:
        raise ConfigError(
            'give one of --user ID (a user the model knows), --ratings FILE|"item=rating,..." or --items "item,..." '
            "(a new user), or --all-users --out FILE; got " + {0: "none of them", 2: "two of them"}.get(given, "all three")
        )
    if include_rated and user is None:
        raise ConfigError("--include-rated goes with --user; a new user's own ratings are never recommended back")
    if n < 1:
        raise ConfigError(f"-n must be a positive whole number; got {n}")


def _explain_count(explain: bool, explain_top: int | None, all_users: bool) -> int:
    """How many rated items explain each recommendation (0: no explanations)."""
    if explain_top is not None and not explain:
        raise ConfigError("--explain-top goes with --explain: aerec recommend MODEL --user ID --explain --explain-top 5")
    if not explain:
        return 0
    if all_users:
        raise ConfigError("--explain goes with one user's list (--user, --ratings or --items); --all-users writes "
                          "lists without explanations")
    top = 3 if explain_top is None else explain_top
    if top < 1:
        raise ConfigError(f"--explain-top must be a positive whole number; got {top}")
    return top


def _recommend_all(model_dir, user, ratings, items, n, include_rated, all_users, users_file, out_file, chunk,
                   progress, as_json) -> None:
    """``recommend --all-users --out FILE [--users FILE]``: every user's top-N streamed to a file."""
    from aerec import workflows

    if not all_users:
        raise ConfigError("--users and --out go with --all-users: aerec recommend MODEL --all-users --out recs.csv")
    if any(x is not None for x in (user, ratings, items)):
        raise ConfigError("--all-users writes every known user's list; it does not go with --user, --ratings or --items")
    if out_file is None:
        raise ConfigError("--all-users needs --out FILE (.csv or .parquet), e.g. --out recs.csv")
    if n < 1:
        raise ConfigError(f"-n must be a positive whole number; got {n}")
    if chunk < 1:
        raise ConfigError(f"--chunk must be a positive whole number; got {chunk}")
    out_file = workflows.check_recs_path(out_file)  # before any work
    check_writable(out_file, "--out")
    if users_file is not None and not Path(users_file).is_file():
        raise ConfigError(f"--users {users_file}: no such file; give a file of user ids, one a line")
    model = load_model(model_dir)
    with warnings_to_console(), count_bar("users", progress and not as_json) as on_chunk:
        written = workflows.recommend_all(model, out_file, n=n, users=users_file, chunk=chunk,
                                          exclude_rated=not include_rated, progress=on_chunk)
    if as_json:
        typer.echo(json.dumps({"out": str(written.path), "users": written.n_users, "rows": written.n_rows,
                               "columns": written.columns}))
        return
    err_console.print(f"top {n} for {written.n_users:,} users ({written.n_rows:,} rows) written to "
                      f"{escape(str(written.path))}", soft_wrap=True)


def _print_recommendations(top: Recommendations, title: str) -> None:
    """A top-N list as a table on stdout: rank, item, title (when known), score, predicted rating."""
    from rich import box
    from rich.table import Table

    table = Table(title=escape(title), box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    titles = any(rec["title"] for rec in top.items)
    table.add_column("rank", justify="right")
    table.add_column("item", justify="right")
    if titles:
        table.add_column("title", overflow="fold")
    table.add_column("score", justify="right")
    if top.has_predictions:
        table.add_column("predicted", justify="right")
    if top.explained:
        table.add_column("because you liked", overflow="fold")
    for rank, rec in enumerate(top.items, start=1):
        title = [escape(rec["title"] or "")] if titles else []
        predicted = [f"{rec['prediction']:.2f}"] if top.has_predictions else []
        because = [escape(_because_text(rec["because"]))] if top.explained else []
        table.add_row(str(rank), escape(str(rec["item_id"])), *title, f"{rec['score']:.3f}", *predicted, *because)
    out_console.print(table)


def _because_text(because: list[dict[str, Any]]) -> str:
    """``Title (5); Other title (4.5)``: the rated items (ids where titles are unknown) with the
    user's rating when the model keeps it; "-" when no rated item pushed the item up."""
    parts = []
    for b in because:
        name = b["title"] or str(b["item_id"])
        parts.append(name if b["rating"] is None else f"{name} ({b['rating']:g})")
    return "; ".join(parts) if parts else "-"
