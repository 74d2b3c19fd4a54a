"""What the performance benchmarks share: the machine line, load averages, and rewriting one
generated block of a section of docs/benchmarks.md (atomically: temp file + rename).

A generated block sits between ``<!-- NAME: generated, begin -->`` and ``<!-- NAME: generated,
end -->`` inside its ``## ...`` section; everything else in the section is written by hand and
kept as it is. A missing section is appended with the given introduction; a missing block is
appended at the end of its section.
"""

from __future__ import annotations

import os

# The OpenMP wait policy as the aerec command chooses it (PASSIVE where other work keeps the
# cores busy; docs/training.md, "Threads and devices"). libgomp reads it only when torch loads,
# so it is chosen before any import that may load torch. USER_WAIT_POLICY is the user's own
# setting, if any: what a benchmark that starts aerec commands passes on to them.
USER_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
from aerec.cli import choose_wait_policy  # noqa: E402

choose_wait_policy()

import contextlib
import datetime as _dt
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
PERF_SECTION = "## Performance: sparse training, throughput and scale"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def now() -> str:
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def load_text() -> str:
    """The 1, 5 and 15-minute load averages: how many other jobs shared the cores."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def machine() -> str:
    """CPU model, cores, memory, Python and torch versions."""
    import torch

    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip() + ", "
                break
    return (f"{model}{os.cpu_count()} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}: generated, begin -->", f"<!-- {name}: generated, end -->"


def write_block(name: str, block: str, *, section: str = PERF_SECTION, intro: str = "", doc: Path = DOC) -> None:
    """Put ``block`` between ``name``'s markers in ``section`` of ``doc``."""
    begin, end = markers(name)
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# aerec benchmarks\n"
    generated = f"{begin}\n{block.rstrip()}\n{end}\n"
    if section not in text:
        text = text.rstrip("\n") + f"\n\n{section}\n\n" + (f"{intro.rstrip()}\n\n" if intro else "") + generated
    else:
        start = text.index(section)
        nxt = text.find("\n## ", start + len(section))
        stop = len(text) if nxt < 0 else nxt + 1
        part = text[start:stop]
        if begin in part and end in part:
            a, b = part.index(begin), part.index(end) + len(end) + 1
            part = part[:a] + generated + part[b:]
        else:
            part = part.rstrip("\n") + f"\n\n{generated}" + ("\n" if nxt >= 0 else "")
        text = text[:start] + part + text[stop:]
    fd, tmp = tempfile.mkstemp(dir=doc.parent, prefix=".benchmarks.", suffix=".md")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, doc)
    log(f"wrote the block {name!r} of {section!r} in {doc}")
