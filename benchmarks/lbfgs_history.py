"""Would the default model fit sooner with fewer stored L-BFGS pairs? Validation only.

L-BFGS keeps ``aerec.training.optimizers.LBFGS_HISTORY`` (20) pairs of past steps and gradient
changes; its two-loop recursion reads them all at every iteration, about a third of the default
model's fit on ML-100K. This study fits the default model (``aerec train``'s: selection run,
then the refit) with 20 and fewer pairs on the training part of each data set, and scores it on
an outer 10 % of that training part (seeded), never on a test file: ML-100K ``u1.base`` ..
``u5.base`` and the synthetic shapes of ``benchmarks/accuracy.py`` (their training parts, seed 0).

    AEREC_DATA_HOME=../shared/data python benchmarks/lbfgs_history.py [--history 20,10,5]
        [--data ml,synthetic] [--json FILE]

Prints a markdown table: per data set and history size, the best epoch, the epochs run, the CPU
seconds of the fit (one thread) and the outer RMSE. About 5 minutes per history size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import SHAPES, synthetic_split  # noqa: E402

OUTER = 0.1  # the share of each training part held out for scoring
OUTER_SEED = 7


def datasets(spec: str):
    from aerec.data import read_ratings

    home = Path(os.environ.get("AEREC_DATA_HOME", "")) / "ml-100k"
    for name in spec.split(","):
        if name == "ml":
            for k in range(1, 6):
                yield f"ML-100K u{k}.base", lambda k=k: read_ratings(home / f"u{k}.base")
        elif name == "synthetic":
            for shape in SHAPES:
                yield shape, lambda s=shape: synthetic_split(SHAPES[s], 0)[0]


def fit_once(train, history: int) -> dict:
    """The default model with ``history`` stored pairs, fitted on ``train`` less the outer part."""
    import aerec.training.optimizers as optimizers
    from aerec import Recommender
    from aerec.config import Config
    from aerec.data.splits import random_split

    split = random_split(train, OUTER, seed=OUTER_SEED)
    optimizers.LBFGS_HISTORY = history  # read when the optimiser is made
    # One thread, named in the settings: the automatic choice follows the machine's load, and
    # another thread count sums in another order (other rounding, other epochs).
    rec = Recommender(config=Config(run={"threads": 1}))
    started = time.process_time()
    rec.fit(split.train)
    cpu = time.process_time() - started
    held = split.test.frame
    pred = rec.predict(held["user"].to_numpy(), held["item"].to_numpy())
    return {"best": rec.train_result_.best_epoch, "run": len(rec.history_), "cpu": cpu,
            "outer": float(np.sqrt(np.mean((pred - held["rating"].to_numpy()) ** 2)))}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--history", default="20,10,5")
    p.add_argument("--data", default="ml,synthetic")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    sizes = [int(x) for x in a.history.split(",")]
    rows = []
    print("| data | pairs | best epoch | epochs run | fit CPU s | outer RMSE |\n|---|---:|---:|---:|---:|---:|")
    for name, load in datasets(a.data):
        train = load()
        for h in sizes:
            r = {"data": name, "history": h, **fit_once(train, h)}
            rows.append(r)
            print(f"| {name} | {h} | {r['best']} | {r['run']} | {r['cpu']:.1f} | {r['outer']:.4f} |", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
