"""The library talks through ``logging`` and leaves the process alone; the CLI shows it with Rich."""

from __future__ import annotations

import ast
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aerec.cli.logs import RichLogHandler
from aerec.config import TrainConfig
from aerec.models.autoencoder import Autoencoder
from aerec.testing import planted_ratings
from aerec.training import Trainer

SRC = Path(__file__).resolve().parents[1] / "src" / "aerec"


def _run(code: str, **env: str) -> list:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**clean, **env})
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["aerec", "aerec.cli", "aerec.training"])
def test_importing_aerec_leaves_the_environment_unchanged(module):
    code = (f"import json, os\nbefore = dict(os.environ)\nimport {module}\n"
            "print(json.dumps(sorted(set(os.environ.items()) ^ set(before.items()))))")
    assert _run(code) == []


def test_the_aerec_logger_is_silent_until_an_application_says_otherwise():
    code = ("import json, logging, aerec\nlog = logging.getLogger('aerec')\n"
            "print(json.dumps([type(h).__name__ for h in log.handlers] + [log.level]))")
    assert _run(code) == ["NullHandler", logging.NOTSET]


@pytest.mark.parametrize("own, busy, expected", [(None, 1.0, "PASSIVE"), (None, 0.1, None), ("ACTIVE", 1.0, "ACTIVE")])
def test_the_command_chooses_the_openmp_wait_policy_as_torch_loads_and_keeps_the_users(own, busy, expected):
    # The command measures the cores (here: stubbed) as the first import of torch starts, and
    # asks OpenMP's threads to sleep only where other work keeps half a core or more busy.
    code = ("import json, os, sys\nimport aerec._cpus\n"
            f"aerec._cpus.busy_elsewhere = lambda *a, **k: {busy}\n"
            "from aerec import cli\nsys.argv = ['aerec', '--version']\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "before = [os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules]\n"
            "import torch\n"
            "print(json.dumps(before + [os.environ.get('OMP_WAIT_POLICY')]))")
    env = {} if own is None else {"OMP_WAIT_POLICY": own}
    # --version loads no torch and sets nothing; the policy is chosen when torch loads.
    assert _run(code, **env) == [own, False, expected]


def test_no_module_outside_the_cli_imports_rich_or_prints():
    offenders = []
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts or path.name == "__main__.py":  # the program, not the library
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "rich" or n.startswith("rich.") or n.startswith("aerec.cli") for n in names):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} imports {names}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} calls print")
    assert offenders == []


def _fit(progress: bool) -> None:
    rows = planted_ratings(seed=0).train_matrix().rows("user")
    net = Autoencoder(rows.shape[1], [4])
    Trainer(TrainConfig(epochs=2, batch_size=16), progress=progress).fit(net, rows)


def test_training_progress_is_log_records_that_a_program_can_draw(caplog):
    with caplog.at_level(logging.INFO, logger="aerec"):
        _fit(progress=True)
    events = [r.progress for r in caplog.records if r.name == "aerec.training.progress"]
    assert [e["event"] for e in events] == ["start", "epoch", "epoch", "end"]
    assert events[1]["epoch"] == 1 and events[1]["epochs"] == 2 and events[1]["loss"] > 0
    assert "epoch 2/2" in caplog.records[2].getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="aerec"):
        _fit(progress=False)  # reported at DEBUG only
    assert [r for r in caplog.records if r.name == "aerec.training.progress"] == []


def test_the_cli_handler_prints_records_and_draws_progress(capsys):
    handler = RichLogHandler()
    log = logging.getLogger("aerec.test")
    handler.handle(log.makeRecord(log.name, logging.WARNING, __file__, 1, "the scale looks odd", (), None))
    for event in ({"event": "start", "epochs": 2, "epoch": 0, "label": "RMSE"},
                  {"event": "epoch", "epochs": 2, "epoch": 1, "loss": 0.5, "val": None, "best": None},
                  {"event": "end", "epochs": 2, "epoch": None}):
        record = log.makeRecord(log.name, logging.INFO, __file__, 1, "epoch", (), None, extra={"progress": event})
        handler.handle(record)
    err = capsys.readouterr().err
    assert "warning: the scale looks odd" in err
    assert "info:" not in err  # progress records become a bar, never log lines
    assert handler._bar is None  # the bar is closed at the end


def test_the_cli_handler_draws_a_download_too(capsys):
    handler = RichLogHandler()
    log = logging.getLogger("aerec.data.download")
    for event, done in (("start", 0), ("advance", 500), ("end", 1000)):
        progress = {"event": event, "kind": "download", "name": "ml-100k", "total": 1000, "completed": done}
        handler.handle(log.makeRecord(log.name, logging.INFO, __file__, 1, "ml-100k", (), None, extra={"progress": progress}))
    assert handler._bar is None and "info:" not in capsys.readouterr().err
