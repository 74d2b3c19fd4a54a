"""Epoch time on a GPU (or the CPU): ML-100K and an ML-20M-sized synthetic matrix.

Prepared so that a session with a GPU runs it in one short call and pastes the table into
docs/benchmarks.md ("Training on a GPU")::

    python benchmarks/gpu_epoch.py --json gpu.json            # auto device: the GPU when there is one

and, here on the CPU, with a small size to show that it works::

    python benchmarks/gpu_epoch.py --device cpu --sizes ml100k,synthetic:300000 --epochs 2

Sizes: ``ml100k`` is MovieLens 100K when ``AEREC_DATA_HOME`` holds it, otherwise a synthetic
matrix of its shape (943 x 1682, 100,000 ratings; the row says which); ``ml20m`` is synthetic
at ML-20M's size (138,493 users x 26,744 items, 20,000,263 ratings); ``synthetic:N`` is N
synthetic ratings at the default MovieLens-like shape.

Setups (``--setups``): ``default`` is what ``aerec train`` uses for explicit ratings (AutoRec on
item rows, full-batch L-BFGS, 5 iterations an epoch); ``minibatch`` is U-AutoRec (user rows,
500 hidden units) with Adam on batches of ``--batch-size`` rows: the setting that scales to
large data. Each timed epoch is one pass of the trainer (no validation: ``train.validation=0``);
the first epoch includes CUDA start-up and kernel selection, so the table reports it apart from
the median of the later ones. Prints one JSON object per run and, at the end, Markdown rows.
"""

from __future__ import annotations

import os

# As the aerec command does: OpenMP threads sleep instead of spinning while they wait. libgomp
# reads this only when torch loads, so it is set before any import that may load torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ML20M = {"n_ratings": 20_000_263, "n_users": 138_493, "n_items": 26_744}

SETUPS = {
    "default": {"model": {"kind": "autorec"}, "train": {}},
    "minibatch": {
        "model": {"kind": "autorec", "orientation": "user", "hidden": [500], "l2": 0.0},
        "train": {"optimizer": "adam", "lr": 1e-3},
    },
}


def _matrix(size: str, seed: int):
    """(RatingMatrix, label) for a size name."""
    from aerec.data.matrix import RatingMatrix
    from aerec.data.synthetic import synthetic_matrix

    if size == "ml100k":
        home = os.environ.get("AEREC_DATA_HOME")
        if home and (Path(home) / "ml-100k" / "u.data").is_file():
            from aerec.data.registry import load_dataset

            return RatingMatrix.from_ratings(load_dataset("ml-100k", data_home=home)), "ML-100K"
        return synthetic_matrix(100_000, n_users=943, n_items=1682, seed=seed), "synthetic, ML-100K-sized"
    if size == "ml20m":
        return synthetic_matrix(ML20M["n_ratings"], n_users=ML20M["n_users"], n_items=ML20M["n_items"], seed=seed), \
            "synthetic, ML-20M-sized"
    if size.startswith("synthetic:"):
        n = int(float(size.split(":", 1)[1]))
        return synthetic_matrix(n, seed=seed), "synthetic"
    raise SystemExit(f"unknown size {size!r}; use ml100k, ml20m or synthetic:N")


def _machine(device) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    text = f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        text = f"{props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}, " + text
    return text


def run_one(size: str, setup: str, data: tuple, args) -> dict:
    """Train ``args.epochs`` epochs of one setup on one size's ``data`` (matrix, label, seconds
    to build it); return the figures."""
    import torch

    from aerec.config import Config
    from aerec.device import resolve_precision
    from aerec.recommender import Recommender
    from aerec.training import resolve_device

    matrix, label, build_s = data
    device = resolve_device(args.device)
    spec = SETUPS[setup]
    train = {**spec["train"], "epochs": args.epochs, "validation": 0.0, "patience": 0, "batch_format": args.batch_format}
    if setup == "minibatch":
        # The library's 64 rows on small data; larger batches keep a GPU busy on large data.
        train["batch_size"] = args.batch_size or (64 if matrix.nnz < 1_000_000 else 1024)
    config = Config(model=dict(spec["model"]), train=train,
                    run={"device": args.device, "precision": args.precision, "seed": args.seed, "threads": args.threads})
    model = Recommender(config=config)
    params, train_cfg, run = model.resolved()
    amp = resolve_precision(run.precision, device) if train_cfg.optimizer != "lbfgs" else None
    batch_format = _batch_format(model, params, train_cfg, matrix, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model.fit(matrix)
    fit_s = time.perf_counter() - t0
    epochs = [r.seconds for r in model.history_]
    later = epochs[1:] or epochs
    out = {
        "size": size, "data": label, "users": matrix.n_users, "items": matrix.n_items, "ratings": int(matrix.nnz),
        "setup": setup, "rows": params.orientation, "optimizer": train_cfg.optimizer,
        "batch_size": train_cfg.batch_size, "batch_format": batch_format, "hidden": params.hidden, "device": str(device),
        "precision": "bf16" if amp is not None else "fp32", "epochs": len(epochs),
        "first_epoch_s": round(epochs[0], 3), "epoch_s": round(statistics.median(later), 3),
        "best_epoch_s": round(min(later), 3),  # the least disturbed, on a machine shared with other work
        "ratings_per_s": round(matrix.nnz / statistics.median(later)),
        "fit_s": round(fit_s, 2), "build_matrix_s": round(build_s, 2),
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda" else None,
        "threads": torch.get_num_threads(), "machine": _machine(device),
        "train_loss": round(model.history_[-1].loss, 4),
    }
    return out


def _batch_format(model, params, train_cfg, matrix, device) -> str:
    """The batch form the trainer will take (dense or sparse), as it decides it."""
    import torch

    from aerec import distributed
    from aerec.registry import get_family
    from aerec.training import choose_batch_format

    rows = matrix.rows(params.orientation)
    with torch.device("meta"):  # only the network's kind matters: allocate nothing
        net = get_family(model.config.kind).build(params, rows.shape[1])
    return choose_batch_format(net, rows, config=train_cfg, loss="mse", device=device,
                               distributed=distributed.current().active)


def markdown(rows: list[dict], command: str) -> str:
    lines = [
        ("| data | users x items, ratings | setup | processes x threads | device, precision | first epoch s "
         "| epoch s (median) | best epoch s | ratings/s | peak GPU MiB |"),
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        setup = (f"{r['setup']} ({r['rows']} rows, {r['optimizer']}, batch {r['batch_size']} {r['batch_format']}, "
                 f"hidden {r['hidden']})")
        mem = "-" if r["peak_gpu_mib"] is None else f"{r['peak_gpu_mib']:,}"
        lines.append(
            f"| {r['data']} | {r['users']:,} x {r['items']:,}, {r['ratings']:,} | {setup} | "
            f"{r['processes']} x {r['threads']} | {r['device']}, "
            f"{r['precision']} | {r['first_epoch_s']:.2f} | {r['epoch_s']:.2f} | {r['best_epoch_s']:.2f} | "
            f"{r['ratings_per_s']:,} | {mem} |"
        )
    if rows:
        lines.append("")
        lines.append(f"Machine: {rows[0]['machine']}. Command: `{command}`")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--precision", default="auto", help="auto (bf16 on a GPU), fp32 or bf16")
    parser.add_argument("--sizes", default="ml100k,ml20m", help="comma-separated: ml100k, ml20m, synthetic:N")
    parser.add_argument("--setups", default="default,minibatch", help=f"comma-separated: {', '.join(SETUPS)}")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is reported apart)")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="rows per update for the minibatch setup (default: 64 below 10^6 ratings, else 1024)")
    parser.add_argument("--batch-format", default="auto", choices=["auto", "dense", "sparse"],
                        help="train.batch_format: auto (the trainer's choice), dense or sparse")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: aerec's automatic choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every run's figures to this file")
    args = parser.parse_args(argv)

    import torch

    from aerec import distributed

    if args.threads:
        torch.set_num_threads(args.threads)
    # Under torchrun the same script times the group (docs/distributed.md); rank 0 reports.
    launch = distributed.init_from_env(args.device)
    main_rank = distributed.is_main()
    rows = []
    for size in args.sizes.split(","):
        t0 = time.perf_counter()
        matrix, label = _matrix(size.strip(), args.seed)  # once per size: ML-20M takes ~15 s to make
        data = (matrix, label, time.perf_counter() - t0)
        for setup in args.setups.split(","):
            result = run_one(size.strip(), setup.strip(), data, args)
            result["processes"] = launch.world_size if launch else 1
            if not main_rank:
                continue
            print(json.dumps(result), flush=True)
            rows.append(result)
            if args.json:  # after every run, so a cut-short session keeps what it measured
                args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    if main_rank:
        command = "python benchmarks/gpu_epoch.py " + " ".join(argv if argv is not None else sys.argv[1:])
        print()
        print(markdown(rows, command.strip()))
    distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
