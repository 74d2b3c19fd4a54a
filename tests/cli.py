"""The command line as the CLI tests call it: Typer's CliRunner over ``aerec.cli.app``.

``run(*args)`` invokes ``aerec ARGS`` (each argument passed through ``str``, so paths and numbers
can be given as they are) and returns the result; ``ok(*args)`` also asserts exit code 0 and shows
the output when it is not.
"""

from __future__ import annotations

from typer.testing import CliRunner

from aerec.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def ok(*args):
    r = run(*args)
    assert r.exit_code == 0, r.output
    return r
