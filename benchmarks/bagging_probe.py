"""Would bagging the accurate preset help? Outer validation only, never a test file.

Fits ``EnsembleRecommender(preset="accurate")`` three times with run seeds 0, 1, 2 (so each fit
carves its own validation part and seeds its members differently) on ML-100K ``uK.base`` less an
outer 10 % (seed 7), and scores on that outer part each fit alone and the running average of
their predictions. Two threads (named: runs repeat exactly at a fixed thread count). About
three minutes per data set:

    AEREC_DATA_HOME=../shared/data python benchmarks/bagging_probe.py u1,u2
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def main(names: list[str]) -> None:
    from aerec import EnsembleRecommender
    from aerec.config import Config
    from aerec.data import read_ratings
    from aerec.data.splits import random_split

    for name in names:
        base = Path(os.environ.get("AEREC_DATA_HOME", "")) / "ml-100k" / f"{name}.base"
        split = random_split(read_ratings(base), 0.1, seed=7)
        held = split.test.frame
        users, items, truth = held["user"].to_numpy(), held["item"].to_numpy(), held["rating"].to_numpy()
        preds: list[np.ndarray] = []
        res: dict = {"data": name}
        for seed in (0, 1, 2):
            t = time.process_time()
            config = Config(model={"preset": "accurate"}, run={"threads": 2, "seed": seed})
            preds.append(EnsembleRecommender(config=config).fit(split.train).predict(users, items))
            res[f"seed{seed}"] = round(float(np.sqrt(np.mean((preds[-1] - truth) ** 2))), 5)
            res[f"avg{len(preds)}"] = round(float(np.sqrt(np.mean((np.mean(preds, 0) - truth) ** 2))), 5)
            res[f"cpu{seed}"] = round(time.process_time() - t, 1)
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main((sys.argv[1] if len(sys.argv) > 1 else "u1,u2").split(","))
