"""``aerec train | evaluate | predict | recommend``: thin commands over :class:`~aerec.Recommender`.

Everything these commands do lives in the library (reading data, splitting, training,
evaluating, saving); this module only turns flags into library calls and results into tables
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

import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import typer
from rich.markup import escape

from aerec.cli import app, err_console, out_console
from aerec.config import Config, apply_overrides, load_config
from aerec.errors import AerecError, ConfigError, DataError
from aerec.registry import family_names

if TYPE_CHECKING:
    from rich.table import Table

    from aerec.data.ratings import Ratings

# numpy, torch, pandas and the library's heavy modules are imported inside the commands that
# use them: ``aerec --help`` and ``aerec COMMAND --help`` then start in a fraction of a second.

__all__ = [
    "check_out_dir", "check_writable", "default_checkpoint_dir", "default_model", "parse_new_user_ratings",
    "stdin_as_file",
]

# Files the reader understands when a new user's ratings are given as a file.
_NEW_USER_SEPARATORS = ("\t", ",", ";", "|", "::")
# Settings that may differ between a checkpointed run and the run that resumes it.
_RESUMABLE_CHANGES = {"epochs", "patience", "checkpoint_every", "checkpoint_budget", "device", "threads"}

# ----------------------------------------------------------------------------- shared options
FormatOption = typer.Option(
    None, "--format", help="File format (default: detected).", rich_help_panel="Reading files"
)
ColumnsOption = typer.Option(
    None, "--columns", help="Column names in file order, e.g. user,item,rating,timestamp (_ skips one).",
    rich_help_panel="Reading files",
)
SepOption = typer.Option(None, "--sep", help="Field delimiter (default: detected).", rich_help_panel="Reading files")
ScaleOption = typer.Option(
    None, "--scale", help="Rating scale LOW:HIGH[:STEP] (default: the format's, or inferred).",
    rich_help_panel="Reading files",
)
DuplicatesOption = typer.Option(
    None, "--duplicates", help="Repeated (user, item) pairs: error (default), last or mean.",
    rich_help_panel="Reading files",
)
NRatingsOption = typer.Option(
    None, "--n-ratings", help="--data synthetic only: how many ratings to generate.", rich_help_panel="Reading files"
)
TasteOption = typer.Option(
    None, "--taste", help="--data synthetic only: how much users pick items they like (0: by popularity only).",
    rich_help_panel="Reading files",
)
JsonOption = typer.Option(False, "--json", help="Print one JSON object on stdout instead of a table.")


def reader_options(fmt, columns, sep, scale, duplicates) -> dict[str, Any]:
    """Reader keyword arguments from the shared flags (unset ones left out)."""
    options = {
        "format": fmt,
        "columns": columns,
        "sep": sep,
        "scale": _parse_scale(scale) if scale is not None else None,
        "duplicates": duplicates,
    }
    return {k: v for k, v in options.items() if v is not None}


def _with_synthetic(
    options: dict[str, Any], data: str | None, n_ratings: int | None, taste: float | None
) -> dict[str, Any]:
    """Add the ``synthetic`` generator's flags (checked here so the message names the flag)."""
    given = {"--n-ratings": n_ratings, "--taste": taste}
    for flag, value in given.items():
        if value is not None and (data is None or data.strip().lower() != "synthetic"):
            raise ConfigError(f"{flag} only applies to --data synthetic")
    if n_ratings is not None and n_ratings < 1:
        raise ConfigError(f"--n-ratings must be a positive whole number; got {n_ratings}")
    if taste is not None and not (taste >= 0 and math.isfinite(taste)):
        raise ConfigError(f"--taste must be a number >= 0; got {taste}")
    extra = {"n_ratings": n_ratings, "taste": taste}
    return {**options, **{k: v for k, v in extra.items() if v is not None}}


# ----------------------------------------------------------------------------- library-ish helpers
def _parse_scale(text: str):
    from aerec.data.scale import RatingScale

    return RatingScale.parse(text)


def default_model(ratings: Ratings) -> str:
    """The model ``aerec train`` uses when ``--model`` is not given.

    Explicit ratings get the library's default family (``Config().kind``, AutoRec).
    """
    from aerec.registry import default_kind

    kind = default_kind(implicit=ratings.implicit)
    if kind is None:
        # Hook: implicit-feedback data (events, no ratings) gets its own default once the
        # implicit family (multinomial likelihood, docs/implicit.md) exists. Until then an
        # explicit-rating model on all-ones data would learn nothing, so say so.
        raise ConfigError(
            f"{ratings.source} holds events without ratings (implicit feedback); aerec has no default "
            "model for implicit data yet. Give the rating column with --columns, or choose a model with --model"
        )
    return kind


def default_checkpoint_dir(out: Path) -> Path:
    """Where ``train --out DIR`` keeps its checkpoints unless told: a hidden sibling ``.DIR.ckpt``."""
    out = Path(out)
    return out.parent / f".{out.name}.ckpt"


def check_out_dir(out: Path) -> None:
    """Refuse an ``--out`` that saving would destroy: a file, or a folder that is not a model.

    Saving replaces the whole directory (written atomically, the old one removed), so
    ``--out ~/Documents`` must fail before training, not delete the folder after it.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the model directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "model.json").is_file():
        raise ConfigError(
            f"--out {out} is a folder that holds something other than an aerec model, and saving replaces "
            "the whole folder; choose a new or empty folder"
        )
    check_writable(out, "--out")


def check_writable(path: Path, flag: str) -> None:
    """Refuse, before any work, an output path that cannot be written: one under a file, in a
    read-only place (/proc), or in a folder without write permission. Saving writes a temporary
    sibling and renames it (and a checkpoint folder is written into), so the nearest existing
    folder of each place is tried for real rather than guessed from permission bits."""
    path = Path(path).expanduser()
    if str(path) == "-":
        raise ConfigError(f"{flag} - (stdout) cannot hold a folder; give a folder name, e.g. {flag} model")
    for place in ([path, path.parent] if path.is_dir() else [path.parent]):
        existing = place
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError(
                f"{flag} {path}: {existing} is a file, so nothing can be created under it; choose a path in a folder"
            )
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".aerec-write-test-", dir=existing))
        except OSError as exc:
            raise ConfigError(
                f"{flag} {path}: cannot write in {existing} ({exc.strerror or exc}); choose a folder you can write to"
            ) from None


_stdin_read_from: Any = None  # stdin can be read once: two options of one command cannot both be '-'


@contextlib.contextmanager
def stdin_as_file(path: Any, flag: str) -> Iterator[Any]:
    """``path``, or for ``-`` a temporary copy of stdin, so every reader (which sniffs the head,
    then parses, then may re-scan to name a bad line) can read it more than once. Messages about
    the copy name ``<stdin>`` instead of its temporary path."""
    global _stdin_read_from
    if path is None or str(path) != "-":
        yield path
        return
    if _stdin_read_from is sys.stdin:  # the same stream (tests run several commands, each its own)
        raise ConfigError(f"{flag} -: stdin is already read for another option; give a file here")
    _stdin_read_from = sys.stdin
    with tempfile.TemporaryDirectory(prefix="aerec-stdin-") as tmp:
        copy = Path(tmp) / "stdin"
        with open(copy, "wb") as fh:
            shutil.copyfileobj(sys.stdin.buffer, fh)
        try:
            yield type(path)(copy) if isinstance(path, Path) else str(copy)
        except AerecError as exc:
            exc.args = tuple(a.replace(str(copy), "<stdin>") if isinstance(a, str) else a for a in exc.args)
            if getattr(exc, "path", None) == str(copy):
                exc.path = "<stdin>"
            raise


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


def _known_label(vocab, text: str) -> Any:
    """The vocabulary's own label for an id typed on the command line ("196" -> 196)."""
    return _finite(vocab.label(vocab.index([text]))[0])


@contextlib.contextmanager
def _warnings_to_console() -> Iterator[None]:
    """Show the library's warnings as one ``warning:`` line each on stderr (no source lines)."""
    from aerec.data.batches import SPARSE_BETA_NOTICE

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=SPARSE_BETA_NOTICE, category=UserWarning)  # torch's, not ours
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                text = str(w.message)
                if text not in seen and not issubclass(w.category, DeprecationWarning):
                    seen.add(text)
                    err_console.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)


def _finite(obj: Any) -> Any:
    """JSON-ready copy: NumPy scalars to Python, NaN/inf to None."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _load_model(directory: Path):
    from aerec.loading import load_model

    return load_model(directory)  # a rating model or an implicit top-N model, by model.json's kind


def _facts_table(title: str) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, show_header=False, show_edge=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    return table


def _fmt(value: Any, digits: int = 4) -> str:
    import numpy as np

    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return escape(str(value))


FALLBACK_WARNING = 0.05  # above this share of test ratings answered by the bias model, say so


def add_fallback_report(model, test: Ratings, metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` with ``fallback_fraction`` (the share of test ratings the bias model answered
    because their user or item is unknown to the model) and how many test users and items are
    unknown; warns when that share is above 5 %, since the figures then say more about the
    fallback than about the model."""
    n, k = metrics.get("n") or 0, metrics.get("n_fallback") or 0
    users = model.users_.index(test.frame["user"].unique(), unknown="missing")
    items = model.items_.index(test.frame["item"].unique(), unknown="missing")
    report = {"fallback_fraction": k / n if n else 0.0, "n_unknown_users": int((users < 0).sum()),
              "n_unknown_items": int((items < 0).sum())}
    if n and k / n > FALLBACK_WARNING:
        warnings.warn(
            f"{k:,} of {n:,} test ratings ({k / n:.1%}) fell back to the bias model because the model never saw "
            f"their user or item ({report['n_unknown_users']:,} of {len(users):,} test users and "
            f"{report['n_unknown_items']:,} of {len(items):,} test items are unknown); the figures say more about "
            "the fallback than about the model: evaluate on users and items of the training data "
            "(e.g. a split of the same file)", stacklevel=1,
        )
    return {**metrics, **report}


# ----------------------------------------------------------------------------- train
@dataclass
class _TrainData:
    train: Ratings
    test: Ratings | None
    validation: Ratings | None
    source: str
    split: str | None

    @property
    def test_source(self) -> str | None:
        """What the test part came from, for the report: the --test file or the split's name."""
        return None if self.test is None else (self.split or self.test.source)


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


def _train_data(data, train_file, test_file, split, options, seed: int) -> _TrainData:
    from aerec.data.registry import load_dataset
    from aerec.data.splits import parse_split

    splitter = parse_split(split, seed=seed) if split is not None else None  # a bad spec fails before reading
    ratings = load_dataset(data, **options) if data is not None else load_dataset(Path(train_file), **options)
    source = data if data is not None else str(train_file)
    if splitter is not None:
        parts = splitter(ratings)
        test = parts.test if len(parts.test) else None
        return _TrainData(parts.train, test, parts.validation, source, parts.name or split)
    test = None
    if test_file is not None:
        # The test file is read like the training file, on the training data's scale, so a
        # rating the model cannot produce is reported with its line.
        test_options = {**options, "scale": options.get("scale") or ratings.scale}
        test_options.pop("n_ratings", None)
        test_options.pop("taste", None)
        if ratings.implicit:  # events train a top-N model: every test row is an interaction too
            test_options.pop("scale")
            test_options["implicit"] = True
        test = load_dataset(Path(test_file), **test_options)
    return _TrainData(ratings, test, None, source, None)


def _build_config(config_file: Path | None, shortcuts: dict[str, dict[str, Any]], sets: list[str]) -> dict[str, Any]:
    """The run's settings as a dict: --config file, then shortcut flags, then --set (later wins)."""
    data = load_config(config_file).to_dict() if config_file is not None else {}
    for section, values in shortcuts.items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            data.setdefault(section, {}).update(values)
    return apply_overrides(data, sets) if sets else data


def _run_identity(model, fingerprint: str) -> dict[str, Any]:
    """What must not change between a checkpointed run and the one resuming it."""
    params, train_cfg, run = model.resolved()
    train = {k: v for k, v in dataclasses.asdict(train_cfg).items() if k not in _RESUMABLE_CHANGES}
    return {
        "kind": model.config.kind, "model": dataclasses.asdict(params), "train": train,
        "seed": run.seed, "data": fingerprint,
    }


def _check_resume(checkpoint_dir: Path, identity: dict[str, Any]) -> None:
    from aerec.errors import ModelFileError
    from aerec.training import has_checkpoint

    if not has_checkpoint(checkpoint_dir):  # said before anything is written into it
        raise ModelFileError(f"no checkpoint in {checkpoint_dir}; train without --resume first")
    path = checkpoint_dir / "aerec-run.json"
    if not path.is_file():
        return
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    changed = [k for k in identity if before.get(k) != identity[k]]
    if changed:
        what = ", ".join("the training data" if k == "data" else k for k in changed)
        raise ConfigError(
            f"the checkpoint in {checkpoint_dir} belongs to a different run ({what} changed); resume with the "
            "same data and settings (only --epochs, --device, --threads and train.patience may change), or "
            "train afresh without --resume"
        )


def _write_identity(checkpoint_dir: Path, identity: dict[str, Any]) -> None:
    from aerec.persistence import atomic_write_text

    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(checkpoint_dir / "aerec-run.json", json.dumps(_finite(identity)))


@app.command("train")
def train_command(
    out: Path = typer.Option(..., "--out", help="Model directory to write (replaced atomically)."),
    data: str | None = typer.Option(
        None, "--data", metavar="NAME|PATH", help="A dataset name (aerec datasets list) or a ratings file/folder."
    ),
    split: str | None = typer.Option(
        None, "--split", metavar="SPEC", help="Hold out a test set: u1..u5, random:0.1, peruser:0.2, ... "
        "(seeded with --seed unless the spec says seed=)."
    ),
    train_file: Path | None = typer.Option(None, "--train", metavar="FILE", help="Training ratings file (- for stdin)."),
    test_file: Path | None = typer.Option(
        None, "--test", metavar="FILE", help="Test ratings file (read with the training file's options)."
    ),
    model: str | None = typer.Option(
        None, "--model", metavar="NAME",
        help=f"Model family: {family_names('explicit')}; implicit: {family_names('implicit')} "
        "(default: best for the data).",
    ),
    implicit: bool = typer.Option(
        False, "--implicit", help="Train a top-N model on implicit feedback: ratings >= --threshold are positives "
        "(a file with no rating column is read as events). Default model: ease. See docs/implicit.md.",
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Implicit models: the lowest rating that is a positive (default 4 on 1..5, "
        "3.5 on half stars)."
    ),
    preset: str | None = typer.Option(
        None, "--preset", metavar="NAME", help="A preset of the family, e.g. course (sae)."
    ),
    config_file: Path | None = typer.Option(
        None, "--config", metavar="FILE.toml", help="TOML settings file with model, train and run tables."
    ),
    sets: list[str] | None = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Override a setting, e.g. train.lr=0.01 (repeatable; wins over all)."
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Most passes over the data (train.epochs)."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Rows per update (train.batch_size; 0 = full batch)."
    ),
    online: bool = typer.Option(False, "--online", help="One row per update, as in the course (train.batch_size=1)."),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate (train.lr)."),
    device: str | None = typer.Option(None, "--device", metavar="cpu|cuda|auto", help="Where to train (run.device)."),
    seed: int | None = typer.Option(
        None, "--seed", help="Random seed for weights, shuffling, validation and --split."
    ),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads (run.threads; 0 = automatic)."),
    checkpoint_dir: Path | None = typer.Option(
        None, "--checkpoint-dir", metavar="DIR", help="Checkpoint folder (default: .OUT.ckpt next to --out, "
        "removed after a successful save)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint of the same run."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
    fmt: str | None = FormatOption,
    columns: str | None = ColumnsOption,
    sep: str | None = SepOption,
    scale: str | None = ScaleOption,
    duplicates: str | None = DuplicatesOption,
    n_ratings: int | None = NRatingsOption,
    taste: float | None = TasteOption,
    as_json: bool = JsonOption,
) -> None:
    """Train a model and save it to --out; evaluate it when a test set is known.

    Settings, later wins: model defaults < --preset < --config < shortcut flags (--epochs,
    --batch-size, --online, --lr, --seed, --device, --threads, --model) < --set key=value.
    """
    from aerec import distributed
    from aerec.data.matrix import RatingMatrix
    from aerec.evaluation import evaluate_ratings, require_ratings
    from aerec.recommender import Recommender
    from aerec.training import resolve_device

    _check_train_flags(data, train_file, test_file, split)
    check_out_dir(out)
    if checkpoint_dir is not None:
        if Path(checkpoint_dir).is_file():
            raise ConfigError(f"--checkpoint-dir {checkpoint_dir} is a file; give a folder for the checkpoints")
        check_writable(checkpoint_dir, "--checkpoint-dir")
    if online and batch_size not in (None, 1):
        raise ConfigError(
            f"--online means one row per update (batch size 1); it contradicts --batch-size {batch_size}"
        )
    shortcuts = {
        "model": {"kind": model, "preset": preset},
        "train": {"epochs": epochs, "batch_size": 1 if online else batch_size, "lr": lr},
        "run": {"seed": seed, "device": device, "threads": threads},
    }
    settings = _build_config(config_file, shortcuts, sets or [])
    config = Config.from_dict(settings, source=str(config_file) if config_file else "settings")
    run = config.resolve_run()
    resolve_device(run.device)  # a device this machine lacks fails before anything is read or written
    if config.model.get("kind") in ("ease", "popularity"):  # settings they would ignore, before reading
        from aerec.implicit.recommender import ImplicitRecommender

        ImplicitRecommender(config=config).check_settings_apply()
    options = _with_synthetic(reader_options(fmt, columns, sep, scale, duplicates), data, n_ratings, taste)
    # Under torchrun: join the other processes (docs/distributed.md); alone, nothing happens.
    distributed.init_from_env(run.device)

    with _warnings_to_console():
        from aerec.cli.implicit import is_implicit_run, read_train_data, train_implicit

        with distributed.main_first(), contextlib.ExitStack() as inputs:  # rank 0 downloads a dataset once
            # '-' reads stdin; a copy lives until the data is read (messages name <stdin>).
            data_in = inputs.enter_context(stdin_as_file(data, "--data"))
            train_in = inputs.enter_context(stdin_as_file(train_file, "--train"))
            test_in = inputs.enter_context(stdin_as_file(test_file, "--test"))
            parts = read_train_data(data_in, train_in, test_in, split, options, run.seed, implicit)
            if "-" in (data, str(train_file)):
                parts = dataclasses.replace(parts, source="<stdin>")
        if is_implicit_run(config, parts.train, implicit, threshold):
            train_implicit(config, parts, out=out, threshold=threshold, checkpoint_dir=checkpoint_dir, resume=resume,
                           progress=progress, as_json=as_json)
            return
        for part, what in ((parts.test, "the test data"), (parts.validation, "the validation data")):
            if part is not None:
                require_ratings(part, what)  # before training, not after it
        if scale is None:  # a scale read off the values may miss a level: say so before training
            from aerec.data.scale import scale_doubts

            for doubt in scale_doubts(parts.train.scale, parts.train.frame["rating"].to_numpy()):
                warnings.warn(doubt, stacklevel=1)
        if "kind" not in config.model:
            config.model["kind"] = default_model(parts.train)
        recommender = Recommender(config=config)
        _, train_cfg, _ = recommender.resolved()  # unknown or bad settings fail before any work
        if train_cfg.optimizer == "lbfgs" and train_cfg.batch_size != 0:
            raise ConfigError(
                f"{config.kind} trains with L-BFGS on the whole matrix (train.batch_size=0), which cannot use "
                f"batches of {train_cfg.batch_size}; for mini-batch or online training also choose a gradient "
                "optimiser, e.g. --set train.optimizer=adam"
            )
        matrix = RatingMatrix.from_ratings(parts.train)
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir(out)
        identity = _run_identity(recommender, matrix.fingerprint())
        if resume:
            _check_resume(ckpt, identity)
        elif ckpt.exists() and checkpoint_dir is None and distributed.is_main():
            shutil.rmtree(ckpt, ignore_errors=True)  # a stale checkpoint of an earlier run
        if distributed.is_main():  # rank 0 writes every file; the others wait for it
            _write_identity(ckpt, identity)
        distributed.barrier()
        if not as_json and distributed.is_main():
            err_console.print(
                f"Training [bold]{escape(config.kind)}[/] on {len(parts.train):,} ratings "
                f"({matrix.n_users:,} users x {matrix.n_items:,} items) from {escape(parts.source)}",
                soft_wrap=True,
            )
        started = time.perf_counter()
        recommender.fit(matrix, parts.validation, progress=progress, checkpoint_dir=ckpt, resume=resume)
        fit_seconds = time.perf_counter() - started
        if not distributed.is_main():
            return  # every process holds the same model; rank 0 evaluates, saves and reports
        test_metrics = evaluate_ratings(recommender, parts.test) if parts.test is not None else None

    result = recommender.train_result_
    metrics = {
        "model": config.kind,
        "preset": config.model.get("preset"),
        "data": parts.source,
        "split": parts.split,
        "test": parts.test_source,
        "n_train": len(parts.train),
        "scale": matrix.scale.to_dict(),
        "best_epoch": result.best_epoch,
        "best_val_rmse": result.best_val,
        "epochs_run": len(result.history),
        "stopped": result.stopped,
        "refit_epochs": recommender.refit_epochs_,  # epochs retrained on every training rating (train.refit)
        "fit_seconds": round(fit_seconds, 3),
    }
    for key in ("rmse", "mae", "n", "n_fallback", "rmse_per_user", "precision@10", "recall@10", "ndcg@10",
                "relevant_from", "n_ranked_users"):
        metrics[key] = test_metrics[key] if test_metrics is not None else None
    metrics = _finite(metrics)
    recommender.save(out, metrics=metrics)
    if checkpoint_dir is None:
        shutil.rmtree(ckpt, ignore_errors=True)  # the saved model supersedes the default checkpoint

    if as_json:
        typer.echo(json.dumps({**metrics, "out": str(out)}))
        return
    table = _facts_table("aerec train")
    preset_note = f" (preset {config.model['preset']})" if config.model.get("preset") else ""
    table.add_row("model", escape(config.kind + preset_note))
    table.add_row("data", escape(parts.source) + (f" split {escape(parts.split)}" if parts.split else ""))
    table.add_row("train ratings", f"{len(parts.train):,} ({matrix.n_users:,} users x {matrix.n_items:,} items)")
    table.add_row("rating scale", escape(str(matrix.scale)) + (" (declared)" if scale is not None else ""))
    refit = f"; refit {metrics['refit_epochs']} on all ratings" if metrics["refit_epochs"] else ""
    table.add_row("epochs", f"{metrics['epochs_run']} run, best {_fmt(metrics['best_epoch'])} ({metrics['stopped']}){refit}")
    table.add_row("validation RMSE", _fmt(metrics["best_val_rmse"]))
    if test_metrics is not None:
        table.add_row("test ratings", f"{metrics['n']:,} ({metrics['n_fallback']:,} by fallback)")
        table.add_row("test RMSE", _fmt(metrics["rmse"]))
        table.add_row("test MAE", _fmt(metrics["mae"]))
        table.add_row("test RMSE per user", _fmt(metrics["rmse_per_user"]))
        table.add_row("test precision@10", f"{_fmt(metrics['precision@10'])} (NDCG@10 {_fmt(metrics['ndcg@10'])}; "
                      f"relevant = ratings >= {metrics['relevant_from']:g})")
    else:
        table.add_row("test", "none (add --split SPEC or --test FILE to evaluate)")
    table.add_row("fit time", f"{fit_seconds:.1f} s")
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
    from aerec.data.matrix import RatingMatrix
    from aerec.data.registry import load_dataset
    from aerec.data.splits import parse_split
    from aerec.evaluation import evaluate_ratings

    if (test_file is None) == (data is None):
        raise ConfigError("give the test ratings with either --test FILE or --data NAME --split SPEC")
    if data is not None and split is None:
        raise ConfigError("--data needs --split SPEC: evaluate on the split's test part, never on training data")
    if split is not None and test_file is not None:
        raise ConfigError("--split goes with --data NAME; --test FILE is already the test set")
    options = _with_synthetic(reader_options(fmt, columns, sep, scale, duplicates), data, n_ratings, taste)
    model = _load_model(model_dir)
    if not model.predicts_ratings:  # a top-N model is judged by its ranking metrics
        from aerec.cli.implicit import evaluate_implicit

        with _warnings_to_console():
            evaluate_implicit(model, model_dir, test_file, data, split, options, as_json)
        return
    with _warnings_to_console(), stdin_as_file(test_file, "--test") as test_in:
        if test_file is not None:
            test = load_dataset(Path(test_in), **{"scale": model.scale_, **options})
            source = "<stdin>" if str(test_file) == "-" else str(test_file)
        else:
            _, _, run = model.resolved()
            parts = parse_split(split, seed=run.seed)(load_dataset(data, **options))
            test, source = parts.test, f"{data} split {parts.name or split}"
            if RatingMatrix.from_ratings(parts.train).fingerprint() != model.fingerprint_:
                warnings.warn(
                    f"{model_dir} was not trained on this split's training part: its test ratings may have been "
                    "seen in training, which makes the figures optimistic", stacklevel=1,
                )
        if len(test) == 0:
            raise DataError("the test set is empty", path=source, fix="choose a split with a test part")
        metrics = _finite(add_fallback_report(model, test, evaluate_ratings(model, test, k=k, relevant=relevant)))
    if as_json:
        typer.echo(json.dumps(metrics))
        return
    table = _facts_table(f"aerec evaluate {escape(str(model_dir))}")
    table.add_row("test", escape(source))
    table.add_row("ratings", f"{metrics['n']:,} ({metrics['n_fallback']:,} by fallback, "
                  f"{_fmt(metrics['fallback_fraction'] * 100, 1)} %)")
    table.add_row("RMSE", _fmt(metrics["rmse"]))
    table.add_row("MAE", _fmt(metrics["mae"]))
    table.add_row("RMSE per user", _fmt(metrics["rmse_per_user"]))
    table.add_row(f"top-{k} lists", f"{metrics['n_ranked_users']:,} users; relevant = test ratings >= "
                  f"{metrics['relevant_from']:g}")
    for name in ("precision", "recall", "ndcg"):
        table.add_row(f"{'NDCG' if name == 'ndcg' else name}@{k}", _fmt(metrics[f"{name}@{k}"]))
    err_console.print(table)


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
    import numpy as np

    from aerec.data.registry import load_dataset
    from aerec.persistence import atomic_write_text

    if out_file is not None and str(out_file) == "-":
        out_file = None  # '-' is stdout
    if out_file is not None:  # before any work
        out_file = Path(out_file)
        if out_file.is_dir():
            raise ConfigError(f"--out {out_file} is a folder; give a file name, e.g. {out_file / 'predictions.csv'}")
        check_writable(out_file, "--out")
    model = _load_model(model_dir)
    model.check_predicts_ratings()  # a top-N model refuses before the pairs are read
    with _warnings_to_console(), stdin_as_file(pairs, "--pairs") as pairs_in:
        # Read as events: a pairs file has no rating, and a ratings file's ratings are dropped.
        # A pair asked twice is answered twice (one output line per input line).
        rows = load_dataset(Path(pairs_in), implicit=True, **reader_options(None, columns, sep, None, "keep")).frame
        preds = model.predict_pairs(rows["user"].to_numpy(), rows["item"].to_numpy())
    frame = rows[["user", "item"]].reset_index(drop=True)
    frame["prediction"] = preds.values.astype(np.float64)
    frame["fallback"] = preds.fallback.astype(np.int8)
    text = frame.to_csv(index=False, float_format="%.4f", lineterminator="\n")
    if out_file is None:
        typer.echo(text, nl=False)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_file, text)
    err_console.print(
        f"{len(frame):,} predictions ({preds.n_fallback:,} by fallback) written to {escape(str(out_file))}",
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
    include_rated: bool = typer.Option(False, "--include-rated", help="With --user: also rank items the user rated."),
    as_json: bool = JsonOption,
) -> None:
    """Top-N items for a known user (--user) or for a brand-new one (--ratings, or --items for
    implicit models), without retraining."""
    given = sum(x is not None for x in (user, ratings, items))
    if given != 1:
        raise ConfigError(
            'give one of --user ID (a user the model knows), --ratings FILE|"item=rating,..." or --items "item,..." '
            "(a new user); got " + {0: "none of them", 2: "two of them"}.get(given, "all three")
        )
    if include_rated and user is None:
        raise ConfigError("--include-rated goes with --user; a new user's own ratings are never recommended back")
    if n < 1:
        raise ConfigError(f"-n must be a positive whole number; got {n}")
    with stdin_as_file(ratings, "--ratings") as ratings_in:  # '-': a file of item,rating lines on stdin
        new_ratings = parse_new_user_ratings(ratings_in) if ratings_in is not None else None
    if items is not None:
        from aerec.cli.implicit import parse_new_user_items

        new_ratings = parse_new_user_items(items)
    model = _load_model(model_dir)
    if items is not None and model.predicts_ratings:
        raise ConfigError(f"--items is for implicit models; {model_dir} predicts ratings: give --ratings \"item=rating,...\"")
    used = 0  # how many of a new user's items the model knows (it warns about the others)
    with _warnings_to_console():
        if new_ratings is not None:
            # Rating models refuse unknown items by default; here they are dropped with a warning.
            top = model.recommend_new(new_ratings, n=n, unknown="warn")
            given_items = list(dict.fromkeys(new_ratings))
            used = int((model.items_.index(given_items, unknown="missing") >= 0).sum()) if given_items else 0
        else:
            if user.strip() not in model.users_:
                raise DataError(
                    f"unknown user: {model_dir} was not trained on this user", value=user,
                    fix='give a user of the training data, or a new user\'s ratings with --ratings "item=rating,..."',
                )
            top = model.recommend(user.strip(), n=n, exclude_rated=not include_rated)
    predictions = top["prediction"].tolist() if "prediction" in top.columns else None
    recs = [
        {"item_id": _finite(item), "score": float(score), "title": _title(top, k)}
        | ({} if predictions is None else {"prediction": float(predictions[k])})
        for k, (item, score) in enumerate(zip(top["item"].tolist(), top["score"].tolist()))
    ]
    if as_json:
        known = _known_label(model.users_, user.strip()) if user is not None else None
        doc: dict[str, Any] = {"user": known, "recommendations": recs}
        if new_ratings is not None:
            doc["ratings_given"] = used  # the items the model knows (the others were warned about)
        typer.echo(json.dumps(_finite(doc)))
        return
    what = "items" if items is not None else "ratings"
    who = f"user {user}" if user is not None else f"a new user with {used} {what[:-1] if used == 1 else what}"
    from rich import box
    from rich.table import Table

    table = Table(title=f"top {n} for {escape(who)}", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    titles = any(rec["title"] for rec in recs)
    table.add_column("rank", justify="right")
    table.add_column("item", justify="right")
    if titles:
        table.add_column("title", overflow="fold")
    table.add_column("score", justify="right")
    if predictions is not None:
        table.add_column("predicted", justify="right")
    for rank, rec in enumerate(recs, start=1):
        title = [escape(rec["title"] or "")] if titles else []
        predicted = [f"{rec['prediction']:.2f}"] if predictions is not None else []
        table.add_row(str(rank), escape(str(rec["item_id"])), *title, f"{rec['score']:.3f}", *predicted)
    out_console.print(table)


def _title(frame, k: int) -> str | None:
    if "title" not in frame.columns:
        return None
    value = frame["title"].iloc[k]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)

