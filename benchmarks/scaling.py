"""Scaling sweep: one epoch of a user-based autoencoder on synthetic matrices of 10^5 to 10^8 ratings.

Each size runs in a fresh Python process (so ``ru_maxrss`` is that size's own peak):

1. build ``synthetic_matrix_with_info(n, seed=0)`` (users and items grow as ``synthetic_sizes``
   says: 943 x 1,682 at 10^5 up to 943,396 x 106,127 at 10^8);
2. hold out 0.2 % of the cells (at most 200,000) for a quality check;
3. ``Recommender(config).fit`` for one epoch, then predict the held-out cells.

The model, chosen for scale: ``autorec`` on **user** rows (its input and output are the items),
hidden 256, sigmoid, the bias-model baseline, l2 100, Adam (lr 0.003), on the sparse path
(``batch_format = auto`` takes it at every size here: the matrices are 0.1-6 % dense). Item
rows would need 943,396-wide layers at 10^8 (483 M weights, about 2 GB, and 8 GB with Adam's
moments and the gradients), for 106,127 rows a pass. The batch holds about 4 ratings per column
(``rows = ceil(4 x items x users / ratings)``: 64 users at 10^5, 4,005 at 10^8): a dense update
of the weights costs ``items x hidden`` per batch whatever the batch holds, so a batch of a
fixed number of rows would make that part of an epoch grow as ``ratings x items / rows``,
faster than the ratings (``items ~ ratings^0.6`` here); with the batch in proportion to the
columns it grows as the ratings do.

Reported per size: seconds of the training epoch (the trainer's epoch clock; no validation runs
in it), the whole ``fit`` (bias model, matrices, the read path for predictions), peak RSS, the
held-out RMSE after that one epoch next to the bias model's and the data's noise floor; then
the least-squares exponent of epoch seconds against ratings.

    python benchmarks/scaling.py [--sizes 1e5,1e6,1e7,1e8] [--json FILE] [--threads 1]

Rewrites the block ``scaling.py`` of the section "## Performance: ..." of docs/benchmarks.md
(``--from-json FILE`` re-renders a saved sweep; ``--merge FILE`` adds sizes measured earlier).
"""

from __future__ import annotations

import os

# As the aerec command does: OpenMP threads sleep instead of spinning while they wait. libgomp
# reads this only when torch loads, so it is set before any import that may load torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _doc  # noqa: E402

HIDDEN = 256
RATINGS_PER_COLUMN = 4  # per batch
HOLDOUT = 0.002
log = _doc.log


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(n_ratings: int, threads: int, seed: int) -> dict[str, Any]:
    """One size, in this (fresh) process."""
    import gc

    import numpy as np
    import torch

    from aerec.baseline import BiasModel
    from aerec.config import Config
    from aerec.data.synthetic import synthetic_matrix_with_info
    import aerec.recommender as rec_mod
    from aerec.recommender import Recommender
    from aerec.training import resolve_threads

    torch.set_num_threads(resolve_threads(threads))
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # the one-off torch._dynamo import, off the clocks
    out: dict[str, Any] = {"n_ratings": n_ratings, "threads": torch.get_num_threads(), "imports_rss_mib": _rss_mib(),
                           "load_before": _doc.load_text()}
    t0 = time.perf_counter()
    matrix, info = synthetic_matrix_with_info(n_ratings, seed=seed)
    out.update(build_seconds=time.perf_counter() - t0, n_users=matrix.n_users, n_items=matrix.n_items,
               noise_floor_rmse=info.noise_floor_rmse, data_rss_mib=_rss_mib())
    rng = np.random.default_rng(seed)
    share = min(HOLDOUT, 200_000 / matrix.nnz)
    fit_matrix, held = matrix.split_cells(rng.random(matrix.nnz) < share)
    del matrix
    gc.collect()
    batch_rows = math.ceil(RATINGS_PER_COLUMN * fit_matrix.n_items * fit_matrix.n_users / fit_matrix.nnz)
    config = Config(
        model={"kind": "autorec", "orientation": "user", "hidden": [HIDDEN]},
        train={"optimizer": "adam", "lr": 3e-3, "batch_size": batch_rows, "epochs": 1, "validation": 0.0},
        run={"threads": out["threads"], "seed": seed, "device": "cpu"},
    )
    model = Recommender(config=config)
    seen: dict[str, str] = {}
    real = rec_mod.Trainer

    class Noting(real):  # benchmark instrumentation: which path did "auto" take?
        def fit(self, net, rows, **kw):
            try:
                return super().fit(net, rows, **kw)
            finally:
                seen["batch_format"] = self.batch_format

    rec_mod.Trainer = Noting
    t0 = time.perf_counter()
    try:
        model.fit(fit_matrix)
    finally:
        rec_mod.Trainer = real
    fit_seconds = time.perf_counter() - t0
    record = model.history_[0]
    out.update(batch_rows=batch_rows, fit_nnz=fit_matrix.nnz, epoch_seconds=record.seconds, fit_seconds=fit_seconds,
               train_rmse=record.train_rmse, loss=record.loss, fit_rss_mib=_rss_mib())
    # The held-out cells: this epoch's model against the bias model (fitted on the same cells).
    users = np.repeat(np.arange(held.n_users), np.diff(held.csr.indptr))
    items, truth = held.csr.indices.astype(np.int64), held.csr.data.astype(np.float64)
    t0 = time.perf_counter()
    pred = model.predict_indices(users, items).values
    out["predict_seconds"] = time.perf_counter() - t0
    bias = BiasModel().fit(fit_matrix.csr).predict(users, items)
    scale = fit_matrix.scale
    out.update(
        held_out=int(held.nnz),
        held_out_rmse=float(np.sqrt(np.mean((pred - truth) ** 2))),
        bias_rmse=float(np.sqrt(np.mean((np.clip(bias, scale.low, scale.high) - truth) ** 2))),
        peak_rss_mib=_rss_mib(), load_after=_doc.load_text(),
        batch_format=seen.get("batch_format"),
    )
    return out


def run_size(n: int, threads: int, seed: int) -> dict[str, Any]:
    """:func:`child` in a fresh process; its JSON line back."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", str(n), "--threads", str(threads), "--seed", str(seed)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"size {n}: the child process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - t0
    return out


def exponent(rows: list[dict[str, Any]], key: str = "epoch_seconds") -> float | None:
    """Least-squares slope of log(``key``) against log(ratings)."""
    pts = [(math.log(r["n_ratings"]), math.log(r[key])) for r in rows if r.get(key)]
    if len(pts) < 2:
        return None
    mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def markdown(res: dict[str, Any]) -> str:
    rows = sorted(res["sizes"], key=lambda r: r["n_ratings"])
    lines = [
        f"Run {res['date']} on {res['machine']}; each size in a fresh process, {rows[0]['threads']} thread"
        f"{'s' if rows[0]['threads'] > 1 else ''} (torch).",
        "",
        f"Command: `{res['command']}`",
        "",
        "| ratings | users x items | batch rows, path | load (1 min) | epoch s | ratings / s | fit s | peak RSS MiB "
        "| of which data MiB | held-out RMSE after 1 epoch | bias model | noise floor |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['n_ratings']:,} | {r['n_users']:,} x {r['n_items']:,} | {r['batch_rows']:,}, {r['batch_format']} | {r['load_before'].split(' / ')[0]} "
            f"| {r['epoch_seconds']:.1f} | {r['fit_nnz'] / r['epoch_seconds']:,.0f} | {r['fit_seconds']:.1f} "
            f"| {r['peak_rss_mib']:,.0f} | {r['data_rss_mib'] - r['imports_rss_mib']:,.0f} | {r['held_out_rmse']:.4f} "
            f"| {r['bias_rmse']:.4f} | {r['noise_floor_rmse']:.3f} |")
    k = exponent(rows)
    sizes = ", ".join(f"{r['n_ratings']:.0e}" for r in rows)
    lines += ["", f"- Fitted exponent of epoch seconds against ratings ({sizes}): "
                  f"**{k:.2f}**" + (" (target <= 1.1: met)" if k is not None and k <= 1.1 else " (target <= 1.1: not met)")
              if k is not None else "- (one size only: no exponent)"]
    big = [r for r in rows if r["n_ratings"] >= 10**8]
    for r in big:
        lines.append(f"- 10^8 ratings: one epoch in {r['epoch_seconds'] / 60:.1f} min, peak RSS {r['peak_rss_mib'] / 1024:.2f} GiB "
                     + ("(target <= 12 GB: met)" if r["peak_rss_mib"] * 2**20 <= 12e9 else "(target <= 12 GB: **not met**)"))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1e5,1e6,1e7,1e8", help="comma list of rating counts")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: aerec's automatic choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write every figure to this file")
    p.add_argument("--merge", default=None, help="a --json file of an earlier sweep: its sizes not measured now are kept")
    p.add_argument("--from-json", default=None, help="re-render the doc block from a --json file (no measuring)")
    p.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child is not None:
        print(json.dumps(child(a.child, a.threads, a.seed)))
        return 0
    if a.from_json:
        res = json.loads(Path(a.from_json).read_text(encoding="utf-8"))
    else:
        sizes = [int(float(x)) for x in a.sizes.split(",") if x.strip()]
        shown = "python benchmarks/scaling.py" + (f" --sizes {a.sizes}" if a.sizes != p.get_default("sizes") else "") + \
            (f" --threads {a.threads}" if a.threads != 1 else "")
        res = {"date": _doc.now(), "machine": _doc.machine(), "command": shown, "sizes": []}
        for n in sizes:
            log(f"scaling: {n:,} ratings (fresh process)")
            row = run_size(n, a.threads, a.seed)
            log(f"  epoch {row['epoch_seconds']:.1f} s, fit {row['fit_seconds']:.1f} s, peak RSS {row['peak_rss_mib']:,.0f} MiB, "
                f"held-out RMSE {row['held_out_rmse']:.4f} (bias {row['bias_rmse']:.4f})")
            res["sizes"].append(row)
            if a.json:  # after every size: a long sweep keeps what it has measured
                Path(a.json).write_text(json.dumps(res, indent=1), encoding="utf-8")
        if a.merge and os.path.exists(a.merge):
            earlier = json.loads(Path(a.merge).read_text(encoding="utf-8"))
            have = {r["n_ratings"] for r in res["sizes"]}
            res["sizes"] += [r for r in earlier["sizes"] if r["n_ratings"] not in have]
            kept = ", ".join(f"{r['n_ratings']:.0e}" for r in earlier["sizes"] if r["n_ratings"] not in have)
            res["command"] += f" (sizes {kept} from an earlier run of {earlier['date']})"
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=1), encoding="utf-8")
    block = markdown(res)
    print(block)
    if not a.no_doc:
        _doc.write_block("scaling.py", block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
