"""``aerec similar``: the items most like one item, from the item vectors a model learned.

The work is :meth:`aerec.base.Estimator.similar_items` (through :func:`aerec.workflows.similar`);
this module parses the flags and prints a table (rank, item, title, similarity) or one JSON
object ``{"item": ..., "similar": [{"item_id", "score", "title"}, ...]}``. An unknown item is a
:class:`~aerec.errors.DataError` naming it (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from aerec.cli import app, out_console
from aerec.cli.common import JsonOption, finite, known_label, load_model
from aerec.errors import ConfigError

__all__ = ["similar_command"]


@app.command("similar")
def similar_command(
    model_dir: Path = typer.Argument(..., metavar="DIR", help="A model directory written by aerec train."),
    item: str = typer.Option(..., "--item", metavar="ID", help="An item the model was trained on."),
    n: int = typer.Option(10, "-n", "--n", help="How many similar items to list."),
    as_json: bool = JsonOption,
) -> None:
    """The items most like --item (cosine similarity of the item vectors the model learned;
    docs/models.md, "Similar items")."""
    from aerec import workflows

    if n < 1:
        raise ConfigError(f"-n must be a positive whole number; got {n}")
    model = load_model(model_dir)
    records = workflows.similar(model, item.strip(), n=n)
    if as_json:
        typer.echo(json.dumps(finite({"item": known_label(model.items_, item.strip()), "similar": records})))
        return
    _print_similar(model, item.strip(), records)


def _print_similar(model, item: str, records: list[dict]) -> None:
    """A table on stdout: rank, item, title (when known), similarity."""
    from rich import box
    from rich.table import Table

    from aerec.workflows import item_title

    name = item_title(model, item)
    title = f"{len(records)} items most like {item}" + (f" ({name})" if name else "")
    table = Table(title=escape(title), box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    titles = any(rec["title"] for rec in records)
    table.add_column("rank", justify="right")
    table.add_column("item", justify="right")
    if titles:
        table.add_column("title", overflow="fold")
    table.add_column("similarity", justify="right")
    for rank, rec in enumerate(records, start=1):
        shown = [escape(rec["title"] or "")] if titles else []
        table.add_row(str(rank), escape(str(rec["item_id"])), *shown, f"{rec['score']:.3f}")
    out_console.print(table)
