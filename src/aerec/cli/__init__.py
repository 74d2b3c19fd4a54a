"""The ``aerec`` command line: a thin Typer layer over the library.

Its command names, flags, JSON keys and exit codes are a contract (docs/architecture.md, "The
command line"): extend them, never rename them.

Every :class:`~aerec.errors.AerecError` becomes a one-paragraph message on stderr and the
error's exit code (2 for bad usage or input, 1 for runtime failures), never a traceback.
"""

from __future__ import annotations

import os
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
    from aerec.cli import logs

    logs.install()  # the library's log records (and training progress) on stderr, through Rich


def _register() -> None:
    """Attach the command modules (each adds its commands to ``app``)."""
    import importlib

    for name in ("datasets", "models", "cv", "similar", "demo", "tune", "serve"):
        try:
            importlib.import_module(f"aerec.cli.{name}")
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name != f"aerec.cli.{name}":
                raise


_register()


# OpenMP threads that spin while they wait make every small matrix product crawl when the cores
# are shared (measured: 3x slower on a busy 2-core machine); sleeping waits cost little on an
# idle one. The OpenMP runtime reads this once, when ``import torch`` loads it, so it is set here,
# before any command imports torch, and never by the library (docs/training.md, "Threads and devices").
WAIT_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    """Console-script entry point (also ``python -m aerec`` and ``torchrun -m aerec``).

    A program, not a library import: it may set the process's OpenMP wait policy (unless the
    user already did), which only works before torch is loaded.
    """
    os.environ.setdefault(*WAIT_POLICY)
    sys.exit(app())
