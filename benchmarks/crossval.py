"""Cross-validation on MovieLens 100K's canonical folds u1..u5: ``aerec cv`` of the default
model beside Surprise's ``cross_validate`` of SVD++ (its defaults, ``random_state=0``) on the
same five train/test files, measured in one run.

Timed: ``aerec cv --data ml-100k --splits u1,u2,u3,u4,u5 --threads 1 --json --no-progress`` as a
whole process (start to exit: reading, five fits and tests of the model and of the bias
baseline), then the same with ``--jobs 2`` (two processes of one thread each), then in this
process Surprise's ``model_selection.cross_validate(SVDpp(random_state=0), data, ["rmse", "mae"],
cv=PredefinedKFold())`` on ``Dataset.load_from_folds`` of u1..u5 (its reading of the files not
timed). Mean +- standard deviation over the folds, population (``ddof=0``) as both report.

Writes the table into docs/benchmarks.md ("## Cross-validation") unless ``--no-doc``.

    AEREC_DATA_HOME=/path/to/data python benchmarks/crossval.py [--no-jobs] [--no-surprise] [--no-doc]
"""

from __future__ import annotations

import os

# As the aerec command does: OpenMP threads sleep instead of spinning while they wait. libgomp
# reads this only when torch loads, so it is set before any import that may load torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _doc  # noqa: E402

SECTION = "## Cross-validation: ML-100K u1..u5"
SPLITS = "u1,u2,u3,u4,u5"


def aerec_cv(jobs: int) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "aerec", "cv", "--data", "ml-100k", "--splits", SPLITS, "--threads", "1",
           "--json", "--no-progress", "--jobs", str(jobs)]
    _doc.log(" ".join(cmd[2:]))
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout), time.perf_counter() - started


def surprise_cv() -> tuple[dict, float]:
    from surprise import Dataset, Reader, SVDpp
    from surprise.model_selection import PredefinedKFold, cross_validate

    folder = Path(os.environ.get("AEREC_DATA_HOME", "data")) / "ml-100k"
    reader = Reader(line_format="user item rating timestamp", sep="\t", rating_scale=(1, 5))
    files = [(str(folder / f"u{i}.base"), str(folder / f"u{i}.test")) for i in range(1, 6)]
    data = Dataset.load_from_folds(files, reader=reader)
    _doc.log("Surprise SVD++ cross_validate on u1..u5")
    started = time.perf_counter()
    out = cross_validate(SVDpp(random_state=0), data, measures=["rmse", "mae"], cv=PredefinedKFold(), n_jobs=1)
    return out, time.perf_counter() - started


def pm(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    return f"{values.mean():.4f} +- {values.std():.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-jobs", action="store_true", help="skip the --jobs 2 run")
    parser.add_argument("--no-surprise", action="store_true", help="skip Surprise's SVD++")
    parser.add_argument("--no-doc", action="store_true", help="print the block instead of writing it")
    args = parser.parse_args()

    before = _doc.load_text()
    rows = []
    one, wall = aerec_cv(1)
    rmse, mae = [f["rmse"] for f in one["folds"]], [f["mae"] for f in one["folds"]]
    fits = [f["fit_seconds"] for f in one["folds"]]
    rows.append(("`aerec cv` default model (autorec), --threads 1", pm(rmse), pm(mae),
                 ", ".join(f"{x:.4f}" for x in rmse), f"{np.mean(fits):.1f}", f"{wall:.1f}"))
    base = one["baseline"]["folds"]
    rows.append(("bias baseline (same run)", pm([f["rmse"] for f in base]), pm([f["mae"] for f in base]),
                 ", ".join(f"{f['rmse']:.4f}" for f in base), f"{np.mean([f['fit_seconds'] for f in base]):.2f}", ""))
    notes = []
    if not args.no_jobs:
        two, wall2 = aerec_cv(2)
        rmse2 = [f["rmse"] for f in two["folds"]]
        rows.append(("`aerec cv --jobs 2` (2 processes x 1 thread)", pm(rmse2), pm([f["mae"] for f in two["folds"]]),
                     ", ".join(f"{x:.4f}" for x in rmse2), f"{np.mean([f['fit_seconds'] for f in two['folds']]):.1f}",
                     f"{wall2:.1f}"))
        diff = max(abs(a - b) for a, b in zip(rmse, rmse2))
        notes.append(f"`--jobs 2` against `--jobs 1`: largest difference of a fold's RMSE {diff:.2g}.")
    if not args.no_surprise:
        try:
            sv, wall_s = surprise_cv()
        except ImportError:
            notes.append("Surprise is not installed (pip install scikit-surprise): no SVD++ row.")
        else:
            rows.append(("Surprise `cross_validate(SVDpp(random_state=0))`", pm(sv["test_rmse"]), pm(sv["test_mae"]),
                         ", ".join(f"{x:.4f}" for x in sv["test_rmse"]), f"{np.mean(sv['fit_time']):.1f}",
                         f"{wall_s:.1f}"))
    after = _doc.load_text()

    lines = [
        f"Measured {_doc.now()} on {_doc.machine()}; load averages {before} before, {after} after.",
        "",
        "| what | RMSE mean +- sd | MAE mean +- sd | RMSE u1, u2, u3, u4, u5 | fit s per fold | wall s (all 5 folds) |",
        "|---|---:|---:|---|---:|---:|",
        *[f"| {' | '.join(r)} |" for r in rows],
        "",
        "sd: the population standard deviation over the 5 folds (as both libraries report). aerec's wall time is the "
        "whole `aerec cv` process (start to exit, reading ML-100K, the five fits and tests of the model and of the "
        "bias baseline, the top-N metrics); Surprise's is its `cross_validate` call (files already read). "
        "Command: `AEREC_DATA_HOME=... python benchmarks/crossval.py`.",
        *([""] + notes if notes else []),
    ]
    block = "\n".join(lines)
    if args.no_doc:
        print(block)
    else:
        _doc.write_block("crossval.py", block, section=SECTION,
                         intro="`aerec cv` of the default model on MovieLens 100K's canonical folds, beside "
                               "Surprise's `cross_validate` of SVD++ on the same files, measured in one run.")


if __name__ == "__main__":
    main()
