"""Which best epoch early stopping would pick with a shorter patience, on validation only.

Trains each named ensemble member (``aerec.models.members``; ``i-autorec`` is the default
model) as ``aerec train`` would up to its selection run, with the patience it has today, on
ML-100K ``u1.base``..``u5.base`` and on the synthetic shapes of ``benchmarks/accuracy.py``
(seeds 0 and 1), and records its validation RMSE per epoch (the 5 % carve of the training
ratings; no test file is read). From each curve it reads the epoch that patience 3, 4, 5 and 6
would have kept: a shorter patience is free where it keeps the same epoch (the refit trains
that many epochs, so the model is the same), and saves the epochs it no longer waits.

    AEREC_DATA_HOME=../shared/data python benchmarks/patience.py [--members i-autorec,u-autorec]
        [--data u1,u2,...|ml|synthetic] [--json FILE]

Prints a markdown table: per member and data, the best epoch and epochs run at patience 6, and
the (best, run) pair each shorter patience gives. One thread; about 5 minutes for the two
AutoRec members, 40 for ``i-kernel``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import SHAPES, synthetic_split  # noqa: E402

PATIENCES = (3, 4, 5, 6)


def curve(member: str, train) -> list[float]:
    """Validation RMSE per epoch of ``member``'s selection run, patience 6, no refit."""
    from aerec import Recommender
    from aerec.config import Config
    from aerec.models.members import MEMBERS

    kind, model, train_settings = MEMBERS[member]
    settings = {**train_settings, "patience": 6, "refit": False}
    rec = Recommender(config=Config.from_dict({"model": {"kind": kind, **model}, "train": settings,
                                               "run": {"threads": 1}}, source="patience.py"))
    rec.fit(train)
    return [h.val_rmse for h in rec.train_result_.history]


def pick(values: list[float], patience: int, min_delta: float = 1e-4) -> tuple[int, int]:
    """(best epoch, epochs run) of early stopping with ``patience`` on a validation curve."""
    best, best_epoch, waited = float("inf"), 0, 0
    for epoch, value in enumerate(values, 1):
        if value < best - min_delta:
            best, best_epoch, waited = value, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                return best_epoch, epoch
    return best_epoch, len(values)


def datasets(spec: str):
    from aerec.data import read_ratings

    home = Path(os.environ.get("AEREC_DATA_HOME", "")) / "ml-100k"
    names = spec.split(",")
    if "ml" in names:
        names = [f"u{k}" for k in range(1, 6)] + [n for n in names if n != "ml"]
    for name in names:
        if name == "synthetic":
            for seed in (0, 1):
                for shape in SHAPES:
                    yield f"{shape}, seed {seed}", lambda s=shape, seed=seed: synthetic_split(SHAPES[s], seed)[0]
        elif name:
            yield f"ML-100K {name}", lambda n=name: read_ratings(home / f"{n}.base")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", default="i-autorec,u-autorec")
    p.add_argument("--data", default="ml,synthetic")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    rows = []
    print("| member | data | best epoch, epochs run (patience 6) | " + " | ".join(f"patience {k}" for k in PATIENCES[:-1])
          + " |")
    print("|---|---|---|" + "---|" * (len(PATIENCES) - 1))
    for member in a.members.split(","):
        for name, load in datasets(a.data):
            values = curve(member, load())
            picks = {k: pick(values, k) for k in PATIENCES}
            rows.append({"member": member, "data": name, "val_rmse": values, "picks": picks})
            best6 = picks[6][0]
            cells = [f"{b}, {r}" + ("" if b == best6 else " **(other epoch)**") for b, r in
                     (picks[k] for k in PATIENCES[:-1])]
            print(f"| {member} | {name} | {picks[6][0]}, {picks[6][1]} | " + " | ".join(cells) + " |", flush=True)
            if a.json:
                Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
