"""docs/python.md's code blocks run in order, as written (offline, synthetic data)."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


def test_the_python_page_runs_as_written(tmp_path, monkeypatch, capsys):
    from aerec.testing import single_thread

    blocks = _blocks()
    assert len(blocks) >= 6, "docs/python.md lost code blocks"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__python_md__"}
    with single_thread():
        for k, block in enumerate(blocks):
            exec(compile(block, f"docs/python.md block {k + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "ndcg@100" in out and "has no training loop" in out and "load_model" in out


def test_the_page_shows_every_shortcut_flag_of_train():
    text = PAGE.read_text(encoding="utf-8")
    for flag in ("--epochs", "--batch-size", "--online", "--lr", "--seed", "--device", "--threads", "--preset"):
        assert f"`{flag}" in text, flag
