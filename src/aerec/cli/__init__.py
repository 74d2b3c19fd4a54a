"""The ``aerec`` command line: a thin Typer layer over the library (DESIGN §2).

Every :class:`~aerec.errors.AerecError` becomes a one-paragraph message on stderr and the
error's exit code (2 for bad usage or input, 1 for runtime failures), never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from aerec import __version__
from aerec.errors import AerecError

__all__ = ["app", "main", "err_console", "out_console"]

# emoji=False: ":val=" in a split spec or a title must print as written, never as an emoji.
err_console = Console(stderr=True, emoji=False)
out_console = Console(emoji=False)


class _AerecGroup(TyperGroup):
    """Turns aerec's own errors, raised anywhere below, into a message and an exit code."""

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except AerecError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_AerecGroup,
    name="aerec",
    help="Autoencoder recommenders on user x item rating matrices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aerec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Autoencoder recommenders on user x item rating matrices."""


def _register() -> None:
    """Attach the command modules (each adds its commands to ``app``)."""
    import importlib

    for name in ("datasets", "models", "demo", "tune", "serve"):
        try:
            importlib.import_module(f"aerec.cli.{name}")
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name != f"aerec.cli.{name}":
                raise


_register()


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
