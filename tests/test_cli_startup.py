"""``aerec --help`` stays quick: the CLI module and the package import none of the heavy
libraries; each command imports what it needs when it runs (timed in benchmarks/cli_speed.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "pandas", "numpy", "scipy", "matplotlib", "fastapi", "optuna", "safetensors", "pydantic")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", ["import aerec", "import aerec.cli", "import aerec.data"])
def test_importing_the_package_and_the_cli_loads_no_heavy_library(code):
    assert _loaded_after(code) == []


def test_help_of_every_command_loads_no_heavy_library():
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom aerec.cli import app\n"
        "for args in (['--help'], ['train', '--help'], ['evaluate', '--help'], ['recommend', '--help'], "
        "['demo', '--help'], ['tune', '--help'], ['serve', '--help'], ['datasets', 'list', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, (args, result.output)"
    )
    assert _loaded_after(code) == []


def test_the_lazy_names_still_resolve():
    import aerec

    assert all(getattr(aerec, name) is not None for name in aerec.__all__)
    from aerec.data import RatingMatrix, registry  # a name and a submodule

    assert RatingMatrix.__name__ == "RatingMatrix" and registry.__name__ == "aerec.data.registry"


def test_an_lbfgs_fit_does_not_import_dynamo():
    # torch imports torch._dynamo (2 s) at an optimiser's first bookkeeping call unless the
    # trainer skips it (aerec.training._without_dynamo_import); the default model uses L-BFGS.
    code = (
        "import sys, tempfile\nfrom aerec import Recommender\nfrom aerec.config import Config\n"
        "from aerec.data.synthetic import synthetic_ratings\n"
        "cfg = Config.from_dict({'model': {'kind': 'autorec', 'hidden': [8]}, 'train': {'epochs': 2}}, source='test')\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    Recommender(config=cfg).fit(synthetic_ratings(2000, n_users=50, n_items=40, seed=0), checkpoint_dir=d)\n"
        "print(['torch._dynamo'] if 'torch._dynamo' in sys.modules else [])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"')) == []
