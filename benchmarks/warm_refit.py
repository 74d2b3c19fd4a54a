"""Could the default model's refit start from the selection run's weights? Validation only.

``aerec train`` fits the default model twice: a selection run on the training ratings less a 5 %
carve, early-stopped on the carve (it picks the epoch count), then a refit on every training
rating (``train.refit``). Until this study the refit was a *fresh* network trained that many
epochs, about 40 % of the fit; the study (the choice of ``train.refit_start = "selected"``)
scores cheaper refits against it on an outer 10 % of each training part (seeded), never a test
file:

- ``fresh``: a fresh network for the selected epoch count (``train.refit_start = "fresh"``,
  the default model's refit until this study);
- ``none``: no refit (the selection run's best weights, the carve back among the inputs);
- ``warmK``: the selection run's best weights trained ``K`` more epochs on every rating;
  ``warmpN``: ``ceil(best epoch / N)`` more epochs. With ``--baseline`` the network's bias
  model is first replaced by the one of every rating (as the fresh refit's is).

On ML-100K ``u1.base`` .. ``u5.base`` and the synthetic shapes of ``benchmarks/accuracy.py``
(training parts, seed 0: ``s0`` .. ``s4``), one thread:

    AEREC_DATA_HOME=../shared/data python benchmarks/warm_refit.py u1,u2,s0,s1 p3,p2 [--baseline]

Prints one JSON line per data set: outer RMSEs and CPU seconds (``cpu_sel``: the selection run;
``cpu_warm*``: the extra epochs). A few minutes per data set.

``--ensemble PRESET`` scores the members' refits of an ensemble preset (``accurate``, ``blend``)
the same way, one whole fit per variant: ``fresh`` (every member a fresh network, the ensembles'
refit until 2026-12-08), ``family`` (each member its family's ``refit_start``: the L-BFGS
networks continue their selected weights, the Adam-trained ``i-dae`` refits fresh) and
``selected`` (every member continues):

    AEREC_DATA_HOME=../shared/data python benchmarks/warm_refit.py u1,u2 - --ensemble accurate

About 3 x 90 CPU seconds per data set for ``accurate``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import SHAPES, synthetic_split  # noqa: E402


def load(name: str):
    from aerec.data import read_ratings

    if name.startswith("s"):
        return synthetic_split(list(SHAPES.values())[int(name[1:])], 0)[0]
    return read_ratings(Path(os.environ.get("AEREC_DATA_HOME", "")) / "ml-100k" / f"{name}.base")


def main(argv: list[str] | None = None) -> None:

    from aerec import Recommender
    from aerec.baseline import BiasModel
    from aerec.config import Config
    from aerec.data.splits import random_split
    from aerec.recommender import _ReadPath
    from aerec.training import Trainer

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data")
    p.add_argument("extra", help="comma-separated K (epochs) or pN (ceil(best epoch / N))")
    p.add_argument("--baseline", action="store_true")
    p.add_argument("--ensemble", metavar="PRESET", help="score an ensemble preset's member refits instead")
    a = p.parse_args(argv)
    one = {"threads": 1}  # named: the automatic choice follows the load, and rounding follows it
    if a.ensemble:
        ensemble_study(a.data.split(","), a.ensemble, one)
        return
    for name in a.data.split(","):
        split = random_split(load(name), 0.1, seed=7)
        held = split.test.frame

        def score(rec) -> float:
            pred = rec.predict(held["user"].to_numpy(), held["item"].to_numpy())
            return round(float(np.sqrt(np.mean((pred - held["rating"].to_numpy()) ** 2))), 5)

        fresh = Recommender(config=Config(train={"refit_start": "fresh"}, run=one))  # the refit before 2026-12-07
        t = time.process_time()
        fresh.fit(split.train)
        res = {"data": name, "fresh": score(fresh), "cpu_fresh": round(time.process_time() - t, 1)}
        rec = Recommender(config=Config(train={"refit": False}, run=one))
        t = time.process_time()
        rec.fit(split.train)
        res.update(none=score(rec), cpu_sel=round(time.process_time() - t, 1), best=rec.train_result_.best_epoch)
        selected = copy.deepcopy(rec.net_.state_dict())
        params, train_cfg, run = rec.resolved()
        for spec in a.extra.split(","):
            k = math.ceil(res["best"] / int(spec[1:])) if spec.startswith("p") else int(spec)
            rec.net_.load_state_dict(selected)
            net = rec.net_.train()
            if a.baseline:
                Recommender._use_baseline(net, params, BiasModel().fit(rec.train_csr_))
            cfg = dataclasses.replace(train_cfg, epochs=k, validation=0.0, patience=0)
            t = time.process_time()
            Trainer(cfg, seed=run.seed, device=rec.device_).fit(net, rec.rows_, loss=rec.loss_, l2=params.l2,
                                                                code_l1=params.code_l1)
            rec.net_ = net.eval()
            rec.read_ = _ReadPath.build(rec)
            res[f"warm{spec}:{k}"] = score(rec)
            res[f"cpu_warm{spec}"] = round(time.process_time() - t, 1)
        print(json.dumps(res), flush=True)


def ensemble_study(names: list[str], preset: str, run: dict) -> None:
    """One JSON line per data set: the outer RMSE and CPU seconds of each member-refit variant."""
    from aerec import EnsembleRecommender
    from aerec.config import Config
    from aerec.data.splits import random_split

    variants = {"fresh": {"refit_start": "fresh"}, "family": {}, "selected": {"refit_start": "selected"}}
    for name in names:
        split = random_split(load(name), 0.1, seed=7)
        held = split.test.frame
        res = {"data": name, "preset": preset}
        for label, train in variants.items():
            rec = EnsembleRecommender(config=Config(model={"preset": preset}, train=train, run=run))
            t = time.process_time()
            rec.fit(split.train)
            pred = rec.predict(held["user"].to_numpy(), held["item"].to_numpy())
            res[label] = round(float(np.sqrt(np.mean((pred - held["rating"].to_numpy()) ** 2))), 5)
            res[f"cpu_{label}"] = round(time.process_time() - t, 1)
            res[f"epochs_{label}"] = rec.refit_epochs_
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
