"""The README's Python block runs as written (offline, on the built-in synthetic data)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_a_python_block():
    assert _python_blocks(), "README.md lost its ```python block"


@pytest.mark.parametrize("block", _python_blocks())
def test_the_readmes_python_runs_as_written(block, tmp_path, monkeypatch, capsys):
    from aerec.testing import single_thread

    monkeypatch.chdir(tmp_path)  # it saves runs/autorec
    with single_thread():
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert "'rmse'" in out and "'ndcg@100'" in out
    assert (tmp_path / "runs" / "autorec" / "model.safetensors").is_file()
