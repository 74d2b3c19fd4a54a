"""``aerec datasets list | info NAME|PATH | download NAME``: a thin layer over the dataset registry.

Human output is a Rich table (stdout) and status lines (stderr); ``--json`` prints exactly one
JSON object on stdout. Errors are :class:`~aerec.errors.AerecError`s, which the root app turns
into a message and exit code 2 (bad input) or 1.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from aerec.cli import QuickHelpGroup, app, err_console, out_console
from aerec.cli.common import json_default

if TYPE_CHECKING:
    from aerec.data.registry import DatasetSpec
    from aerec.data.scale import RatingScale

# The registry (pandas, numpy) is imported inside the commands: ``--help`` stays quick.

__all__ = ["datasets_app"]

datasets_app = typer.Typer(
    cls=QuickHelpGroup,
    name="datasets",
    help="List, inspect and download datasets (MovieLens, built-in toy and synthetic data).",
    no_args_is_help=True,
)
app.add_typer(datasets_app, name="datasets")

DataHomeOption = typer.Option(
    None,
    "--data-home",
    help="Folder datasets live in (default: $AEREC_DATA_HOME, else the user cache folder).",
    show_default=False,
)


@datasets_app.command("list")
def list_command(
    data_home: Path | None = DataHomeOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """List every known dataset: kind, archive size, ratings, scale, and whether it is here."""
    from aerec.data import registry

    home = registry.data_home(data_home)
    specs = registry.list_datasets()
    if as_json:
        rows = [_spec_json(s, home) for s in specs]
        typer.echo(json.dumps({"data_home": str(home), "datasets": rows}))
        return
    table = Table(
        title="aerec datasets",
        caption=f"data home: {escape(str(home))}\n* GroupLens terms: {registry.GROUPLENS_LICENSE_SHORT}",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
        collapse_padding=True,
        show_edge=False,
    )
    for col, justify in (("name", "left"), ("kind", "left"), ("size", "right"), ("ratings", "right"),
                         ("scale", "left"), ("here", "left"), ("licence", "left")):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for s in specs:
        if s.kind == "builtin":
            here = "-"
        else:
            here = "[green]yes[/]" if registry.is_downloaded(s.name, home) else "no"
        table.add_row(
            s.name,
            "built-in" if s.kind == "builtin" else "download",
            _size(s.size) if s.size else "-",
            f"{s.ratings:,}" if s.ratings else "-",
            _scale_short(s.scale),
            here,
            "GroupLens*" if s.license == registry.GROUPLENS_LICENSE else "aerec",
        )
    out_console.print(table)


@datasets_app.command("info")
def info_command(
    name: str = typer.Argument(
        ..., metavar="NAME|PATH", help="A dataset name (see `aerec datasets list`), a ratings file, or - for stdin."
    ),
    data_home: Path | None = DataHomeOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    fmt: str | None = typer.Option(None, "--format", help="File format (default: detected)."),
    columns: str | None = typer.Option(
        None, "--columns", help="Column names in file order, e.g. user,item,rating,timestamp."
    ),
    sep: str | None = typer.Option(None, "--sep", help="Field delimiter (default: detected)."),
    scale: str | None = typer.Option(None, "--scale", help="Rating scale LOW:HIGH[:STEP] (default: inferred)."),
    duplicates: str | None = typer.Option(
        None, "--duplicates", help="Repeated (user, item) pairs: error, last or mean."
    ),
    encoding: str | None = typer.Option(None, "--encoding", help="Text encoding of the file."),
    n_ratings: int | None = typer.Option(None, "--n-ratings", help="synthetic only: how many ratings."),
    seed: int | None = typer.Option(None, "--seed", help="synthetic only: random seed."),
    taste: float | None = typer.Option(
        None, "--taste", help="synthetic only: how much users pick items they like (0: by popularity only)."
    ),
) -> None:
    """Users, items, ratings, density, scale and a rating histogram of a dataset or file."""
    from aerec.data import registry
    from aerec.data.scale import RatingScale

    options: dict[str, Any] = {
        "format": fmt,
        "columns": _columns(columns),
        "sep": sep,
        "scale": RatingScale.parse(scale) if scale is not None else None,
        "duplicates": duplicates,
        "encoding": encoding,
        "n_ratings": n_ratings,
        "seed": seed,
        "taste": taste,
    }
    options = {k: v for k, v in options.items() if v is not None}
    from aerec.cli.common import stdin_as_file

    with stdin_as_file(name, "NAME|PATH") as source:  # '-' reads stdin
        ratings = registry.load_dataset(source, data_home=data_home, **options)
    if name == "-":
        ratings = dataclasses.replace(ratings, source="<stdin>")
    summary = ratings.summary()
    spec = registry.REGISTRY.get(name)
    summary["dataset"] = spec.name if spec is not None else None
    # A scale read off the values (no --scale, no known format) may miss a level: say so.
    from aerec.data.scale import scale_doubts

    doubts = scale_doubts(ratings.scale, ratings.frame["rating"].to_numpy()) if scale is None and not ratings.implicit else []
    summary["scale_warnings"] = doubts
    for doubt in doubts:
        err_console.print(f"[yellow]warning:[/] {escape(doubt)}", soft_wrap=True)
    if as_json:
        typer.echo(json.dumps(summary, default=json_default))
        return
    _print_summary(summary, spec)


@datasets_app.command("download")
def download_command(
    name: str = typer.Argument(..., metavar="NAME", help="A downloadable dataset, e.g. ml-1m."),
    data_home: Path | None = DataHomeOption,
    force: bool = typer.Option(False, "--force", help="Download and unpack again even if present."),
    url: str | None = typer.Option(None, "--url", help="Fetch from this URL, or copy a local archive (a path or file:// URL); the same file: checksums still apply."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Download, verify and unpack a dataset into the data home; print its folder on stdout."""
    from aerec.data import registry
    from aerec.data.download import download

    spec = registry.get_spec(name, download=True)
    if spec.kind != "download":
        err_console.print(f"{spec.name} is built in: nothing to download (use it by name).")
        return
    if not force and registry.is_downloaded(spec.name, data_home):
        err_console.print(f"{spec.name} is already here.")
    else:
        err_console.print(
            f"Downloading {spec.title} ({_size(spec.size)}). Terms of use: {escape(spec.license)}.",
            soft_wrap=True,
        )
    folder = download(spec.name, data_home=data_home, force=force, url=url, progress=progress)
    typer.echo(str(folder))


# ----------------------------------------------------------------------------- helpers
def _columns(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [c.strip() for c in text.split(",")]


def _scale_short(scale: RatingScale) -> str:
    """``1-5``, ``0.5-5 (0.5)`` or ``0-1 cont.``: the scale in a few characters."""
    text = f"{scale.low:g}-{scale.high:g}"
    if scale.step == 0:
        return text + " cont."
    return text if scale.step == 1 else f"{text} ({scale.step:g})"


def _size(n: int | None) -> str:
    if not n:
        return "size unknown"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _spec_json(spec: DatasetSpec, home: Path) -> dict[str, Any]:
    from aerec.data import registry

    return {
        "name": spec.name,
        "kind": spec.kind,
        "title": spec.title,
        "url": spec.url,
        "size": spec.size,
        "sha256": spec.sha256,
        "md5": spec.md5,
        "users": spec.users,
        "items": spec.items,
        "ratings": spec.ratings,
        "scale": spec.scale.to_dict(),
        "downloaded": registry.is_downloaded(spec.name, home),
        "folder": str(home / spec.folder) if spec.folder else None,
        "license": spec.license,
    }


def _print_summary(summary: dict[str, Any], spec: DatasetSpec | None) -> None:
    from aerec.data.scale import RatingScale

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    if spec is not None:
        facts.add_row("dataset", f"{spec.name}: {escape(spec.title)}")
    facts.add_row("source", escape(str(summary["source"])))
    facts.add_row("users", f"{summary['users']:,}")
    facts.add_row("items", f"{summary['items']:,}")
    facts.add_row("ratings", f"{summary['ratings']:,}")
    facts.add_row("density", f"{summary['density']:.4%}")
    doubt = " [yellow](check it: see the warning)[/]" if summary.get("scale_warnings") else ""
    facts.add_row("scale", escape(str(RatingScale.from_dict(summary["scale"]))) + doubt)
    if summary.get("mean_rating") is not None:
        facts.add_row("mean rating", f"{summary['mean_rating']:.3f}")
    facts.add_row("timestamps", "yes" if summary.get("timestamps") else "no")
    if summary.get("implicit"):
        facts.add_row("implicit", "yes (events, no ratings)")
    if summary.get("noise_floor_rmse") is not None:
        facts.add_row("noise floor RMSE", f"{summary['noise_floor_rmse']:.4f}")
    if spec is not None and spec.kind == "download":
        facts.add_row("licence", escape(spec.license_short))
    out_console.print(facts)
    out_console.print(_histogram(summary["histogram"], summary["ratings"]))


def _histogram(histogram: dict[str, int], total: int, width: int = 40) -> Table:
    """A horizontal bar per rating level: ``level | ████ | count | share``."""
    table = Table(title="ratings per level", show_edge=False, box=None, padding=(0, 1))
    table.add_column("rating", justify="right")
    table.add_column("", justify="left")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    top = max(histogram.values(), default=0) or 1
    for level, count in histogram.items():
        bar = "█" * math.ceil(width * count / top) if count else ""
        share = count / total if total else 0.0
        table.add_row(level, f"[cyan]{bar}[/]", f"{count:,}", f"{share:.1%}")
    return table
