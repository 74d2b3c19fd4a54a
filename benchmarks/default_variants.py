"""Re-check the explicit default against its closest variants, on validation ratings only.

``--part variants`` (the default): the default model (``autorec``: I-AutoRec over a bias model,
L-BFGS) and a few variants that ``aerec tune`` ranked near it are fitted on ML-100K ``u1.base``
with the validation part carved by seeds 0, 1 and 2; reported per variant: the best validation
RMSE per seed, the best epoch, the seconds to it and the whole fit, on 1 thread.

``--part refit``: whether refitting on every training rating (``train.refit``) helps. Per seed,
10 % of ``u1.base`` is held out (an *outer* validation, seed 100 + s); on the other 90 % the
default selects its epochs on its own 5 % carve and keeps those weights (refit off) or trains
a fresh network for that many epochs on the whole 90 % (refit on); both are scored on the
outer 10 %.

``u1.test`` is never read by either part.

    AEREC_DATA_HOME=/path/to/data python benchmarks/default_variants.py [--part variants|refit] [--seeds 0,1,2]

The decision rule is written in docs/benchmarks.md ("How the defaults were chosen") before the
figures; this script only measures.
"""

from __future__ import annotations

import os

# As the aerec command does: OpenMP threads sleep instead of spinning while they wait. libgomp
# reads this only when torch loads, so it is set before any import that may load torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

VARIANTS = {
    "default": {},
    "mask_input": {"mask_input": True},
    "l2 142": {"l2": 142.0},
    "l2 142 + mask_input": {"l2": 142.0, "mask_input": True},
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["variants", "refit"], default="variants")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    from aerec.config import Config
    from aerec.data.readers import read_ratings
    from aerec.recommender import Recommender

    torch.set_num_threads(1)
    home = Path(os.environ.get("AEREC_DATA_HOME", "")) / "ml-100k"
    if not (home / "u1.base").exists():
        raise SystemExit(f"{home / 'u1.base'} not found: set AEREC_DATA_HOME to the folder holding ml-100k/")
    train = read_ratings(home / "u1.base")  # u1.test is not read
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.part == "refit":
        return refit_check(train, seeds)
    out = {}
    for name, model in VARIANTS.items():
        rows = []
        for seed in seeds:
            config = Config(model={"kind": "autorec", **model}, train={"refit": False},  # selection only
                            run={"threads": 1, "seed": seed, "device": "cpu"})
            rec = Recommender(config=config)
            t0 = time.perf_counter()
            rec.fit(train)
            fit_s = time.perf_counter() - t0
            res = rec.train_result_
            to_best = sum(r.seconds for r in res.history[: res.best_epoch])
            rows.append({"seed": seed, "val_rmse": res.best_val, "best_epoch": res.best_epoch,
                         "epochs": len(res.history), "seconds_to_best": to_best, "fit_seconds": fit_s})
            print(f"{name:22s} seed {seed}: val {res.best_val:.4f} (epoch {res.best_epoch}/{len(res.history)}), "
                  f"{to_best:.1f} s to best, fit {fit_s:.1f} s", file=sys.stderr, flush=True)
        out[name] = rows
    print("| variant | validation RMSE, seeds " + ", ".join(map(str, seeds)) + " | mean | best epochs | s to best (mean) | fit s (mean) |")
    print("| --- | --- | ---: | --- | ---: | ---: |")
    for name, rows in out.items():
        print(f"| {name} | " + ", ".join(f"{r['val_rmse']:.4f}" for r in rows)
              + f" | {statistics.mean(r['val_rmse'] for r in rows):.4f} | " + ", ".join(str(r['best_epoch']) for r in rows)
              + f" | {statistics.mean(r['seconds_to_best'] for r in rows):.1f} | {statistics.mean(r['fit_seconds'] for r in rows):.1f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


def refit_check(train, seeds: list[int]) -> int:
    """Refit off against refit on, scored on an outer 10 % of ``train`` held out from both."""
    import numpy as np

    from aerec.config import Config
    from aerec.data.matrix import RatingMatrix
    from aerec.recommender import Recommender

    full = RatingMatrix.from_ratings(train)
    print("| seed | epochs chosen | outer RMSE, refit off | outer RMSE, refit on | difference | fit s off | fit s on |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    diffs = []
    for seed in seeds:
        inner, outer = full.split_cells(np.random.default_rng(100 + seed).random(full.nnz) < 0.1)
        users = np.repeat(np.arange(outer.n_users), np.diff(outer.csr.indptr))
        items, truth = outer.csr.indices.astype(np.int64), outer.csr.data.astype(np.float64)
        scores, secs = {}, {}
        for refit in (False, True):
            config = Config(model={"kind": "autorec"}, train={"refit": refit}, run={"threads": 1, "seed": seed, "device": "cpu"})
            t0 = time.perf_counter()
            model = Recommender(config=config).fit(inner)
            secs[refit] = time.perf_counter() - t0
            pred = model.predict_indices(users, items).values
            scores[refit] = float(np.sqrt(np.mean((pred - truth) ** 2)))
        diffs.append(scores[True] - scores[False])
        print(f"| {seed} | {model.train_result_.best_epoch} | {scores[False]:.4f} | {scores[True]:.4f} | {diffs[-1]:+.4f} "
              f"| {secs[False]:.1f} | {secs[True]:.1f} |", flush=True)
    print(f"\nmean difference {statistics.mean(diffs):+.4f}; refit better on {sum(d < 0 for d in diffs)} of {len(diffs)} seeds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
