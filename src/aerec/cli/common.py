"""What every ``aerec`` command shares: the reading flags, output-path checks, stdin as a file,
library warnings as console lines, and the small formatters of the result tables.

Commands import from here, never from one another, so each command module stands on this one
and on the library. Heavy modules (numpy, pandas, torch) are imported inside the functions that
need them: ``aerec --help`` imports this module and must stay quick.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from aerec.cli import err_console
from aerec.errors import AerecError, ConfigError

if TYPE_CHECKING:
    from rich.table import Table

    from aerec.config import Config

__all__ = [
    "ColumnsOption", "ConfigFileOption", "DataOption", "DeviceOption", "DuplicatesOption", "EpochsOption",
    "FormatOption", "JsonOption", "NRatingsOption", "PresetOption", "ProgressOption", "ScaleOption", "SepOption",
    "SetOption", "TasteOption", "build_config", "check_out_dir", "check_writable", "count_bar", "facts_table",
    "finite", "fmt_value", "json_default", "known_label", "load_model", "reader_options", "stdin_as_file",
    "warnings_to_console", "with_synthetic",
]

# ----------------------------------------------------------------------------- shared options
# Each flag that several commands take with one meaning is declared here once; a command lists it
# in its signature (``device: str | None = DeviceOption``), which is where Typer reads its flags.
DataOption = typer.Option(
    None, "--data", metavar="NAME|PATH", help="A dataset name (aerec datasets list) or a ratings file/folder."
)
PresetOption = typer.Option(None, "--preset", metavar="NAME", help="A preset of the family, e.g. course (sae), or "
                            "accurate (autorec: an ensemble of 4 networks, lower error, about 9x the training time).")
ConfigFileOption = typer.Option(
    None, "--config", metavar="FILE.toml", help="TOML settings file with model, train and run tables."
)
SetOption = typer.Option(
    None, "--set", metavar="KEY=VALUE", help="Override a setting, e.g. train.lr=0.01 (repeatable; wins over all)."
)
EpochsOption = typer.Option(None, "--epochs", help="Most passes over the data (train.epochs).")
DeviceOption = typer.Option(None, "--device", metavar="cpu|cuda|auto", help="Where to train (run.device).")
ProgressOption = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr.")

# The reading flags (the "Reading files" panel of every command that reads ratings).
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


def _parse_scale(text: str):
    from aerec.data.scale import RatingScale

    return RatingScale.parse(text)


def with_synthetic(
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


# ----------------------------------------------------------------------------- output paths
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


# ----------------------------------------------------------------------------- stdin
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


# ----------------------------------------------------------------------------- library calls and output
@contextlib.contextmanager
def warnings_to_console() -> Iterator[None]:
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


def load_model(directory: Path):
    """A saved model of either kind (rating or implicit top-N), by its model.json."""
    from aerec.loading import load_model

    return load_model(directory)


def finite(obj: Any) -> Any:
    """JSON-ready copy: NumPy scalars to Python, NaN/inf to None (see :func:`aerec.workflows.json_ready`)."""
    from aerec.workflows import json_ready

    return json_ready(obj)


def json_default(x: Any) -> Any:
    """``json.dumps``' fallback for what ends up in summaries: NumPy scalars and arrays, paths."""
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def known_label(vocab, text: str) -> Any:
    """The vocabulary's own label for an id typed on the command line ("196" -> 196)."""
    return finite(vocab.label(vocab.index([text]))[0])


def facts_table(title: str) -> Table:
    """A two-column table of named facts (the reports of train and evaluate)."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, show_header=False, show_edge=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    return table


def fmt_value(value: Any, digits: int = 4) -> str:
    """A figure for a table cell: ``-`` for missing or not finite, grouped thousands for counts."""
    import numpy as np

    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return escape(str(value))


def count_bar(label: str, show: bool):
    """A context giving ``progress(done, total)`` for a count of ``label`` (folds, users): a
    Rich bar on stderr, or None when ``show`` is false."""
    if not show:
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def bar():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console, transient=True) as shown:
            task = shown.add_task(label, total=None)

            def advance(done: int, total: int) -> None:
                shown.update(task, completed=done, total=total)

            yield advance

    return bar()


def build_config(config_file: Path | None, shortcuts: dict[str, dict[str, Any]], sets: list[str] | None) -> Config:
    """A run's settings: the --config file, then the shortcut flags (``{section: {key: value}}``,
    unset ones left out), then --set; later wins."""
    from aerec.config import Config, apply_overrides, load_config

    data = load_config(config_file).to_dict() if config_file is not None else {}
    for section, values in shortcuts.items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            data.setdefault(section, {}).update(values)
    data = apply_overrides(data, sets) if sets else data
    return Config.from_dict(data, source=str(config_file) if config_file else "settings")
