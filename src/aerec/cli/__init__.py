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

__all__ = ["app", "main", "err_console", "out_console", "QuickHelpGroup"]

# emoji=False: ":val=" in a split spec or a title must print as written, never as an emoji.
err_console = Console(stderr=True, emoji=False)
out_console = Console(emoji=False)


class QuickHelpGroup(TyperGroup):
    """A command group whose ``--help`` flag, when not given, is False rather than unset.

    Typer checks an unset flag through a pydantic validator, so pydantic's import (about 0.2 s)
    made up half of ``aerec COMMAND --help``; a False flag it passes as it is.
    """

    def get_help_option(self, ctx):  # type: ignore[override]
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


class _AerecGroup(QuickHelpGroup):
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


class _BeforeTorchLoads:
    """An import hook that sets the OpenMP wait policy just before a command first imports torch.

    Idle OpenMP threads either spin (burn their core while they wait for the next product) or
    sleep (``OMP_WAIT_POLICY=PASSIVE``). Where other processes keep the cores busy, spinning
    threads make every small product crawl (measured: 3x slower on a busy 2-core machine); on
    free cores, sleeping ones make the default model's fit 1.5x slower (docs/training.md,
    "Threads and devices"). So the command measures what other processes keep busy
    (:func:`aerec._cpus.busy_elsewhere`, which the thread count then reuses) and asks threads to
    sleep only when at least half a core is taken. The OpenMP runtime reads the variable once,
    when ``import torch`` loads it: hence a hook on that import, which ``--help`` and the commands
    that never load torch do not pay for. A policy the user set is kept; the library itself,
    ``import aerec``, never touches the environment.
    """

    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            choose_wait_policy()
        return None  # the usual finders load it


def choose_wait_policy() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` when other processes keep half a core or more busy, unless set."""
    if "OMP_WAIT_POLICY" in os.environ:
        return
    from aerec._cpus import busy_elsewhere

    others = busy_elsewhere()
    if others is not None and others >= 0.5:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def main() -> None:
    """Console-script entry point (also ``python -m aerec`` and ``torchrun -m aerec``).

    A program, not a library import: it may set the process's OpenMP wait policy (unless the
    user already did), which only works before torch is loaded.
    """
    if "torch" not in sys.modules:
        from aerec._cpus import open_window

        # The busy-CPU figure (wait policy, thread count) is measured over the start-up that
        # comes before torch, not over a sleep.
        open_window()
        sys.meta_path.insert(0, _BeforeTorchLoads())
    sys.exit(app())
