"""Regenerate the generated tables of docs/benchmarks.md, one section at a time, with one command.

``--section performance`` (issue 6: performance and scale) runs, in this order, each in its own
process and each rewriting its own generated block:

1. ``explicit_u1.py``: the course loop, aerec's default (1 and 2 threads, seeds) and Surprise's
   four defaults on ML-100K u1, side by side (time to the course's quality, fit time and
   accuracy against Surprise); about 6 minutes;
2. ``explicit_u1.py --parts folds``: aerec's default and Surprise on u1..u5; about 3 minutes;
3. ``performance.py``: matmul peak, dense/sparse crossover, time to quality on both paths,
   throughput per family against the peak, torch.compile; about 5 minutes;
4. ``scaling.py``: the synthetic sweep 10^5..10^8 ratings, a fresh process per size; about
   15 minutes, most of it the 10^8 epoch.

``--section implicit`` runs ``implicit_topn.py`` (about 23 minutes) and ``implicit_selection.py``
(about 3 minutes); ``--section all`` both sections. ``--only NAME,...`` keeps some steps
(``explicit``, ``folds``, ``performance``, ``scaling``, ``implicit``, ``selection``);
``--quick`` runs smoke versions that write nothing.

    AEREC_DATA_HOME=/path/to/data python benchmarks/run_all.py --section performance
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

STEPS = {
    "explicit": ("performance", ["explicit_u1.py"], ["--quick", "--no-doc"]),
    "folds": ("performance", ["explicit_u1.py", "--parts", "folds"], ["--quick", "--no-doc"]),
    "performance": ("performance", ["performance.py"], ["--quick", "--no-doc"]),
    "scaling": ("performance", ["scaling.py"], ["--sizes", "1e5,1e6", "--no-doc"]),
    "implicit": ("implicit", ["implicit_topn.py"], ["--quick", "--no-doc"]),
    "selection": ("implicit", ["implicit_selection.py"], ["--seeds", "0", "--models", "ease", "--no-doc"]),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--section", choices=["performance", "implicit", "all"], default="performance")
    p.add_argument("--only", default=None, help=f"comma list of steps to run, among {', '.join(STEPS)}")
    p.add_argument("--quick", action="store_true", help="smoke runs; docs/benchmarks.md is left as it is")
    a = p.parse_args(argv)
    names = [n for n, (section, _, _) in STEPS.items() if a.section in (section, "all")]
    if a.only:
        wanted = [x.strip() for x in a.only.split(",") if x.strip()]
        unknown = set(wanted) - set(STEPS)
        if unknown:
            p.error(f"unknown step(s) {sorted(unknown)}; choose among {', '.join(STEPS)}")
        names = [n for n in names if n in wanted]
    started = time.perf_counter()
    for name in names:
        _, args, quick_args = STEPS[name]
        command = [sys.executable, str(HERE / args[0]), *args[1:], *(quick_args if a.quick else [])]
        print(f"[run_all] {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        done = subprocess.run(command)
        print(f"[run_all] {name}: exit {done.returncode} after {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        if done.returncode != 0:
            return done.returncode
    print(f"[run_all] done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
