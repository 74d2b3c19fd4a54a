"""Accuracy of the explicit presets: the default and ``accurate``, on ML-100K and synthetic shapes.

Parts (``--parts``, comma-separated; default all three):

``u1``
    ML-100K ``u1.base`` -> ``u1.test``: the default model (``aerec train``) and the ``accurate``
    preset (``aerec train --preset accurate``), fit time and test RMSE / MAE, next to the bias
    model. Everything either model chooses (epochs, the blend's weights) is chosen on a
    validation part carved from ``u1.base``; ``u1.test`` is scored once, at the end.
``folds``
    The same on each of ``u1..u5`` and their mean.
``synthetic``
    Data of other shapes from :func:`aerec.data.synthetic.synthetic_ratings` (known low-rank
    model, so each row also gives the noise floor, the best RMSE any predictor can expect):
    far sparser, more items than users, few ratings per item, and a 1..100 scale. Each is split
    80/20 by rating (seeded); the default and ``accurate`` are compared with the bias model
    (:class:`aerec.baseline.BiasModel`) and Surprise's ``SVDpp`` (needs ``scikit-surprise``;
    fed ratings mapped affinely onto 1..5, the scale its default learning rate and
    regularisation are set for, and mapped back).

Each part rewrites its own generated block of the section "## Accuracy: the default and the
accurate preset" of docs/benchmarks.md (not with ``--no-doc``); ``--json FILE`` saves the rows
and ``--from-json FILE`` rewrites the blocks from a saved run without training.

    AEREC_DATA_HOME=/path/to/data python benchmarks/accuracy.py [--parts u1,folds,synthetic] [--threads 2]
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
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _doc  # noqa: E402  (benchmarks/_doc.py: machine line, doc blocks)

SECTION = "## Accuracy: the default and the accurate preset"
PRESETS = {"default": {}, "accurate": {"preset": "accurate"}}
FOLDS = ("u1", "u2", "u3", "u4", "u5")
# name -> (ratings, users, items, scale low, high, step): each differs from ML-100K in one way.
SHAPES = {
    "ML-like (control)": (40_000, 500, 800, 1, 5, 1),
    "far sparser (0.2 %)": (40_000, 4_000, 5_000, 1, 5, 1),
    "more items than users": (40_000, 300, 5_000, 1, 5, 1),
    "few ratings per item (~5)": (40_000, 2_000, 8_000, 1, 5, 1),
    "scale 1..100": (40_000, 500, 800, 1, 100, 1),
}
log = _doc.log


# ====================================================================== fitting and scoring
def fit_preset(name: str, train: Any, threads: int, seed: int = 0) -> tuple[Any, float, float]:
    """The preset ``name`` fitted on ``train`` as ``aerec train`` would; (model, wall seconds,
    CPU seconds). "default" is what ``aerec train`` uses without ``--model`` or ``--preset``:
    I-AutoRec, or where items have few ratings each the ``blend`` preset
    (:func:`aerec.workflows.default_preset`). On a shared machine the wall time grows with the
    load; the CPU time of a 1-thread run does not much, so it estimates the wall time the fit
    takes on an idle core."""
    from aerec.config import Config
    from aerec.ensemble import rating_model
    from aerec.workflows import default_preset

    model_settings = dict(PRESETS[name])
    preset = default_preset(train, {}) if name == "default" else None
    if preset is not None:
        model_settings["preset"] = preset
    config = Config.from_dict({"model": {"kind": "autorec", **model_settings},
                               "run": {"threads": threads, "seed": seed, "device": "cpu"}}, source="accuracy.py")
    model = rating_model(config)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(train)
    return model, time.perf_counter() - t0, time.process_time() - c0


def errors(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    err = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


def bias_errors(train: Any, test: Any) -> dict[str, float]:
    from aerec.baseline import BiasModel

    bias = BiasModel().fit(train)
    f = test.frame
    u = bias.users_.index(f["user"].to_numpy(), unknown="missing")
    i = bias.items_.index(f["item"].to_numpy(), unknown="missing")
    pred = np.clip(bias.predict(u, i), train.scale.low, train.scale.high)
    return errors(pred, f["rating"].to_numpy())


def preset_rows(train: Any, test: Any, threads: int) -> dict[str, Any]:
    """The bias model, the default and accurate on one split: RMSE, MAE and fit seconds."""
    out: dict[str, Any] = {"bias": bias_errors(train, test)}
    f = test.frame
    for name in PRESETS:
        load = os.getloadavg()[0]
        model, seconds, cpu = fit_preset(name, train, threads)
        out[name] = {**errors(model.predict(f["user"].to_numpy(), f["item"].to_numpy()), f["rating"].to_numpy()),
                     "fit_seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "load": round(load, 1)}
        if getattr(model, "blend_", None) is not None:
            out[name]["weights"] = dict(zip(model.resolved()[0].members, model.blend_.weights))
        log(f"  {name}: RMSE {out[name]['rmse']:.4f} in {seconds:.0f} s (load {load:.1f})")
    return out


# ====================================================================== ML-100K
def movielens(folds: tuple[str, ...], threads: int) -> dict[str, Any]:
    from aerec.data.readers import read_ratings

    home = Path(os.environ.get("AEREC_DATA_HOME", "")) / "ml-100k"
    if not (home / "u1.base").exists():
        raise SystemExit(f"{home / 'u1.base'} not found: set AEREC_DATA_HOME to the folder holding ml-100k/")
    rows = {}
    for fold in folds:
        log(f"{fold}: fitting the presets")
        train, test = read_ratings(home / f"{fold}.base"), read_ratings(home / f"{fold}.test")
        rows[fold] = preset_rows(train, test, threads)
    return rows


# ====================================================================== synthetic shapes
def synthetic_split(shape: tuple, seed: int = 0) -> tuple[Any, Any, float]:
    """(train, test, noise floor) of one synthetic shape, split 80/20 by rating."""
    from aerec.data.scale import RatingScale
    from aerec.data.synthetic import synthetic_ratings

    n, users, items, low, high, step = shape
    data = synthetic_ratings(n, n_users=users, n_items=items, scale=RatingScale(low, high, step), seed=seed)
    test = np.random.default_rng(seed).random(len(data)) < 0.2
    return data.subset(~test), data.subset(test), float(data.meta["noise_floor_rmse"])


def svdpp_baseline(train: Any, test: Any) -> tuple[str, dict[str, float]]:
    """Surprise's SVD++ on ratings mapped onto 1..5 (its defaults' scale), or biased ALS."""
    low, high = train.scale.low, train.scale.high
    to5 = lambda r: 1 + 4 * (np.asarray(r, dtype=np.float64) - low) / (high - low)  # noqa: E731
    f, g = train.frame, test.frame
    try:
        from surprise import Dataset, Reader, SVDpp
    except ImportError:
        return "not run (pip install scikit-surprise)", {"rmse": float("nan"), "mae": float("nan")}
    frame = f[["user", "item"]].assign(rating=to5(f["rating"]))
    data = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = SVDpp(random_state=0)
    algo.fit(data)
    pred = np.array([algo.predict(u, i).est for u, i in zip(g["user"], g["item"])])
    name = "Surprise SVD++ (random_state 0, its defaults)"
    back = low + (np.asarray(pred) - 1) * (high - low) / 4
    return name, errors(np.clip(back, low, high), g["rating"].to_numpy())


def synthetic(threads: int, names: list[str], save: Path | None = None, seed: int = 0) -> dict[str, Any]:
    """The rows of the synthetic shapes ``names``; with ``save``, the rows so far are written
    there (JSON) after each shape, so a long run that is stopped keeps what it finished."""
    rows = {}
    for name in names:
        shape = SHAPES[name]
        log(f"synthetic {name}: {shape}")
        train, test, floor = synthetic_split(shape, seed)
        row = preset_rows(train, test, threads)
        row["svdpp_name"], row["svdpp"] = svdpp_baseline(train, test)
        log(f"  {row['svdpp_name']}: RMSE {row['svdpp']['rmse']:.4f}; bias RMSE {row['bias']['rmse']:.4f}")
        row["noise_floor"], row["shape"] = floor, list(shape)
        rows[name] = row
        if save is not None:
            save.write_text(json.dumps(rows, indent=1))
    return rows


# ====================================================================== tables
def table_movielens(rows: dict[str, Any]) -> str:
    lines = ["| fold | bias RMSE | default RMSE | default fit s (CPU s) | accurate RMSE | accurate fit s (CPU s) "
             "| accurate - default |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for fold, r in rows.items():
        d, a = r["default"], r["accurate"]
        lines.append(f"| {fold} | {r['bias']['rmse']:.4f} | {d['rmse']:.4f} | {d['fit_seconds']:.0f} "
                     f"({d['cpu_seconds']:.0f}; load {d['load']}) | {a['rmse']:.4f} | {a['fit_seconds']:.0f} "
                     f"({a['cpu_seconds']:.0f}; load {a['load']}) | {a['rmse'] - d['rmse']:+.4f} |")
    if len(rows) > 1:
        mean = {k: statistics.mean(r[k]["rmse"] for r in rows.values()) for k in ("bias", "default", "accurate")}
        lines.append(f"| mean | {mean['bias']:.4f} | {mean['default']:.4f} | | {mean['accurate']:.4f} | | "
                     f"{mean['accurate'] - mean['default']:+.4f} |")
    weights = next(iter(rows.values()))["accurate"].get("weights", {})
    lines.append("")
    lines.append("Blend weights of the first fold: " + ", ".join(f"{k} {v:.2f}" for k, v in weights.items()) + ".")
    return "\n".join(lines)


def table_synthetic(rows: dict[str, Any]) -> str:
    lines = ["| shape | ratings, users x items, scale | noise floor | bias | SVD++-like | default | accurate | "
             "default vs best baseline | accurate vs best baseline |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in rows.items():
        n, users, items, low, high, _ = r["shape"]
        best = min(r["bias"]["rmse"], r["svdpp"]["rmse"])
        d, a = r["default"]["rmse"], r["accurate"]["rmse"]
        blend = " (blend)" if r["default"].get("weights") else ""  # the default's I- + U-AutoRec blend
        lines.append(f"| {name} | {n}, {users} x {items}, {low}..{high} | {r['noise_floor']:.3f} | "
                     f"{r['bias']['rmse']:.4f} | {r['svdpp']['rmse']:.4f} | {d:.4f}{blend} | {a:.4f} | "
                     f"{100 * (d / best - 1):+.1f} % | {100 * (a / best - 1):+.1f} % |")
    lines.append("")
    lines.append(f"SVD++-like baseline: {next(iter(rows.values()))['svdpp_name']}. RMSE on the data's own scale; "
                 "the margins are relative (negative: lower error than the better of the bias model and SVD++). "
                 "\"(blend)\": the default there is the blend preset (fewer than 20 ratings per item).")
    return "\n".join(lines)


def write_doc(result: dict[str, Any], command: str) -> None:
    head = f"Run {result['date']} on {result['machine']}; `{command}`; {result['threads']} thread(s); load at start " \
           f"{result['load']}.\n\n"
    if "u1" in result:
        _doc.write_block("accuracy.py u1", head + table_movielens({"u1": result["u1"]}), section=SECTION)
    if "folds" in result:
        _doc.write_block("accuracy.py folds", head + table_movielens(result["folds"]), section=SECTION)
    if "synthetic" in result:
        seed = result.get("seed", 0)
        name = "accuracy.py synthetic" + (f" --seed {seed}" if seed else "")
        _doc.write_block(name, head + table_synthetic(result["synthetic"]), section=SECTION)


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several saved runs as one: the first run's header, each part from the run that has it,
    the synthetic shapes of every run together (commands, dates and loads joined)."""
    merged: dict[str, Any] = dict(runs[0])
    for run in runs[1:]:
        for key in ("u1", "folds"):
            if key in run and key not in merged:
                merged[key] = run[key]
        if "synthetic" in run:
            merged["synthetic"] = {**merged.get("synthetic", {}), **run["synthetic"]}
        for key in ("command", "date", "load"):
            if run.get(key) != merged.get(key):
                merged[key] = f"{merged.get(key)}; {run.get(key)}"
    return {k: v for k, v in merged.items() if v is not None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="u1,folds,synthetic")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--shapes", default=None, help="synthetic shapes by position in SHAPES, e.g. 0,2 (default: all)")
    p.add_argument("--seed", type=int, default=0, help="synthetic data and split seed (its own doc block when not 0)")
    p.add_argument("--json", default=None)
    p.add_argument("--from-json", default=None, help="rewrite the doc blocks from saved runs (comma-separated "
                   "files: their parts are merged, later files' synthetic shapes added to earlier ones')")
    p.add_argument("--no-doc", action="store_true")
    a = p.parse_args(argv)
    command = "python benchmarks/accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.from_json:
        result = merge_runs([json.loads(Path(f).read_text()) for f in a.from_json.split(",")])
        write_doc(result, result.get("command", command))
        return 0
    import torch

    torch.set_num_threads(a.threads)
    parts = a.parts.split(",")
    result: dict[str, Any] = {"date": _doc.now(), "machine": _doc.machine(), "threads": a.threads,
                              "load": _doc.load_text(), "command": command}
    if "folds" in parts:  # u1 is the first fold: one run gives both blocks
        result["folds"] = movielens(FOLDS, a.threads)
        result["u1"] = result["folds"]["u1"]
    elif "u1" in parts:
        result["u1"] = movielens(("u1",), a.threads)["u1"]
    if "synthetic" in parts:
        names = list(SHAPES) if a.shapes is None else [list(SHAPES)[int(k)] for k in a.shapes.split(",")]
        partial = Path(a.json).with_suffix(".synthetic.json") if a.json else None
        result["synthetic"] = synthetic(a.threads, names, partial, a.seed)
        result["seed"] = a.seed
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1))
    if not a.no_doc:
        write_doc(result, command)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
