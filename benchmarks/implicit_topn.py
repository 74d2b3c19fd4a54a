"""Implicit top-N under strong generalization: Mult-VAE, Mult-DAE, CDAE, RecVAE, EASE, EASE+DAE and popularity.

Protocol (docs/evaluation.md, Liang et al. 2018): ratings >= 4 are the positives. For each seed,
``user_split`` holds out ``--test-users`` and ``--val-users`` whole users; the models train on
the other users' positives only. Validation and test users fold in 80 % of their positives
(seeded) and rank the other 20 % among every item they did not give. Validation users select
each network's epoch (NDCG@100, early stopping), EASE's lambda and easedae's share of the DAE;
the test users are scored once, at the end. Every model sees the same split, the same fold-in
draws and the same thread count, so the rows of one seed are directly comparable.

Data: ``ml-100k`` (``$AEREC_DATA_HOME/ml-100k/u.data``), ``synthetic`` (aerec's built-in
MovieLens-like ratings, 100,000 of them, seed 0, taste 1: users pick items they like, so the
positives say something about the user) and ``synthetic-popular`` (the same with taste 0: items
picked by popularity alone, so no model should beat popularity; one that did would be leaking
held-out items). All binarised the same way.

    AEREC_DATA_HOME=/path/to/data python benchmarks/implicit_topn.py [--seeds 0,1,2,3,4] [--quick]
    AEREC_DATA_HOME=/path/to/data python benchmarks/implicit_topn.py --tune    # validation-only search
    python benchmarks/implicit_topn.py --from-json a.json,b.json   # the report of earlier --json runs

``--from-json`` joins the datasets of several ``--json`` runs (made with the same seeds, e.g. one
process per dataset) into one report, and writes it as a run would.

Prints markdown and rewrites the generated block of "## Implicit top-N: strong generalization"
in docs/benchmarks.md (not with ``--quick`` or ``--no-doc``). ``--tune`` runs the
hyper-parameter grid behind the families' defaults, judged on validation users only, and
writes its own block.
"""

from __future__ import annotations

import os

# As the aerec command does: OpenMP threads sleep instead of spinning while they wait. libgomp
# reads this only when torch loads, so it is set before any import that may load torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aerec.config import Config
from aerec.data.registry import load_dataset
from aerec.data.splits import user_split
from aerec.implicit import ImplicitRecommender, implicit_view
from aerec.implicit.recommender import CLOSED_FORM
from aerec.ranking import hits_of, ndcg_at_k, top_k

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _doc  # noqa: E402  (benchmarks/_doc.py: machine line, doc blocks)

SECTION = "## Implicit top-N: strong generalization"
MAIN_BLOCK = "implicit_topn.py"  # the generated blocks' names (their markers: _doc.markers)
TUNE_BLOCK = "implicit_topn.py --tune"
MODELS = ("easedae", "multvae", "multdae", "cdae", "recvae", "ease", "popularity")
METRICS = ("recall@20", "recall@50", "ndcg@100")
INTRO = """\
Protocol ([evaluation.md](evaluation.md), Mult-VAE's): ratings >= 4 are positives; per seed, whole users are held out
for validation and test, and models train on the others only. Held-out users fold in 80 % of their
positives (seeded) and rank the other 20 % among all items they did not give. Validation users
choose each network's epoch (NDCG@100), EASE's lambda and easedae's share; test users are scored once. Every model
of a seed sees the same split and the same fold-in draws. Fit times are wall-clock seconds on one
thread, validation passes included.
"""

# The validation-only search behind the families' defaults: (name, model settings, train settings).
# Rows other than the papers' vary one setting of the default.
TUNE_GRID = [
    ("multvae (default: no hidden layer, code 300, dropout 0.3, batch 32, cap 0.2 over 1,000 updates)", {}, {}),
    ("multvae hidden [600, 100], dropout 0.5 (the default until 2026-11-29)",
     {"hidden": [600, 100], "dropout": 0.5}, {}),
    ("multvae hidden [600, 200], dropout 0.5 (the paper's network)", {"hidden": [600, 200], "dropout": 0.5}, {}),
    ("multvae paper preset ([600, 200], dropout 0.5, batch 500, cap 0.2 over 200,000 updates)",
     {"preset": "paper"}, {}),
    ("multvae hidden [600, 300] (a tanh layer before the code)", {"hidden": [600, 300]}, {}),
    ("multvae code 200", {"hidden": [200]}, {}),
    ("multvae code 600", {"hidden": [600]}, {}),
    ("multvae code 1000", {"hidden": [1000]}, {}),
    ("multvae dropout 0.5", {"dropout": 0.5}, {}),
    ("multvae dropout 0.2", {"dropout": 0.2}, {}),
    ("multvae anneal cap 0.1", {"anneal_cap": 0.1}, {}),
    ("multvae anneal cap 0.5 over 3000 steps", {"anneal_cap": 0.5, "total_anneal_steps": 3000}, {}),
    ("multvae anneal cap 1 over 5,000 steps", {"anneal_cap": 1.0, "total_anneal_steps": 5000}, {}),
    ("multvae l2 1e-4", {"l2": 1e-4}, {}),
    ("multvae batch 100", {}, {"batch_size": 100}),
    ("multvae lr 3e-3", {}, {"lr": 3e-3}),
    ("multdae (default: one tanh layer of 300, dropout 0.3, l2 0.001)", {"kind": "multdae"}, {}),
    ("multdae hidden [600, 200], dropout 0.5 (the default until 2026-11-29)",
     {"kind": "multdae", "hidden": [600, 200], "dropout": 0.5}, {}),
    ("multdae hidden [600, 200], dropout 0.5, l2 0.01 (the paper's)",
     {"kind": "multdae", "hidden": [600, 200], "dropout": 0.5, "l2": 0.01}, {}),
    ("cdae (default: hidden 200, every item in the loss)", {"kind": "cdae"}, {}),
    ("cdae 5 sampled negatives per positive", {"kind": "cdae", "negatives": 5.0}, {}),
    ("cdae hidden 50 (the paper's K)", {"kind": "cdae", "hidden": 50}, {}),
    ("recvae (default: lr 1e-3, batch 64, gamma 0.01)", {"kind": "recvae"}, {}),
    ("recvae gamma 0.005 (the paper's)", {"kind": "recvae", "gamma": 0.005}, {}),
    ("recvae paper preset (gamma 0.005, lr 5e-4, batch 500)", {"kind": "recvae", "preset": "paper"}, {}),
    ("recvae gamma 0.02", {"kind": "recvae", "gamma": 0.02}, {}),
    ("recvae latent 300, dropout 0.3 (Mult-VAE's code and dropout)",
     {"kind": "recvae", "latent": 300, "dropout": 0.3}, {}),
    ("recvae depth 1, latent 300, dropout 0.3 (one encoder layer)",
     {"kind": "recvae", "depth": 1, "latent": 300, "dropout": 0.3}, {}),
    ("easedae (EASE + Mult-DAE, lambda and share on validation)", {"kind": "easedae"}, {}),
    ("ease (lambda on validation)", {"kind": "ease"}, {}),
]


log = _doc.log


def load_text() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


# The synthetic variants: (taste, description). Taste 1 was fixed before any model ran on it:
# the odds of picking an item grow e-fold per standard deviation of the user's affinity.
SYNTHETIC = {
    "synthetic": (1.0, "synthetic (100,000 ratings, seed 0, taste 1: users pick items they like)"),
    "synthetic-popular": (0.0, "synthetic-popular (100,000 ratings, seed 0, taste 0: items picked by popularity alone)"),
}


def dataset(name: str):
    """The ratings of ``name`` and a description (``SYNTHETIC``: the built-in variants)."""
    if name in SYNTHETIC:
        taste, label = SYNTHETIC[name]
        return load_dataset("synthetic", n_ratings=100_000, seed=0, taste=taste), label
    return load_dataset(name), name


def fit_one(kind: str, split, seed: int, *, quick: bool, model: dict | None = None, train: dict | None = None) -> dict:
    """Fit one model on a split's training users; validation and test figures and fit time."""
    settings = {"kind": kind, **(model or {})}
    train = dict(train or {})
    if quick and kind not in CLOSED_FORM:  # EASE and popularity have no epochs and refuse them
        train.setdefault("epochs", 3)
    config = Config(model=settings, train=train, run={"seed": seed, "device": "cpu"})
    started = time.perf_counter()
    fitted = ImplicitRecommender(config=config).fit(split.train, split.validation)
    seconds = time.perf_counter() - started
    test = fitted.evaluate(split.test)
    result = fitted.train_result_
    params = dataclasses.asdict(fitted.params_) if dataclasses.is_dataclass(fitted.params_) else {}
    return {
        "model": settings["kind"], "seed": seed, "fit_seconds": seconds, "val_ndcg@100": result.best_val,
        "best_epoch": result.best_epoch if settings["kind"] != "ease" else None,
        "l2": getattr(fitted.params_, "l2", None) if settings["kind"] == "ease" else None,
        **{m: test[m] for m in METRICS}, "n_test_users": test["n_users"],
        "chosen": {k: params[k] for k in ("ease_l2", "weight") if k in params},
        "ndcg_users": per_user_ndcg(fitted, split.test).tolist(),
    }


def per_user_ndcg(fitted: ImplicitRecommender, test) -> np.ndarray:
    """Each test user's NDCG@100 ``(users,)``, in the task's order: the same users and order for
    every model of a split, so two models' arrays pair up (their mean is ``evaluate``'s)."""
    task = fitted.task(test)
    users = np.flatnonzero(np.diff(task.held_out.indptr) > 0)
    scores = fitted.score_rows(task.inputs[users], task.user_rows[users])
    truth = task.held_out[users]
    return ndcg_at_k(hits_of(top_k(scores, task.inputs[users], 100), truth), np.diff(truth.indptr), 100)


def run(datasets: list[str], seeds: list[int], models: list[str], *, val_users: int, test_users: int,
        quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"seeds": seeds, "val_users": val_users, "test_users": test_users, "datasets": {}}
    for name in datasets:
        ratings, label = dataset(name)
        positives = implicit_view(ratings)
        rows = []
        for seed in seeds:
            split = user_split(ratings, test_users=test_users, validation_users=val_users, seed=seed)
            for kind in models:
                log(f"{name} seed {seed}: {kind}")
                rows.append(fit_one(kind, split, seed, quick=quick))
                log(f"  ndcg@100 {rows[-1]['ndcg@100']:.4f} in {rows[-1]['fit_seconds']:.1f} s")
        out["datasets"][name] = {
            "label": label, "users": positives.n_users, "items": positives.n_items, "positives": len(positives),
            "rows": rows,
        }
    return out


def tune(seeds: list[int], *, val_users: int, test_users: int, quick: bool) -> list[dict[str, Any]]:
    """Every setting of TUNE_GRID on ML-100K; the choice reads the validation column only."""
    ratings, _ = dataset("ml-100k")
    rows = []
    for seed in seeds:
        split = user_split(ratings, test_users=test_users, validation_users=val_users, seed=seed)
        for name, model, train in TUNE_GRID:
            model = dict(model)
            kind = model.pop("kind", "multvae")
            log(f"tune seed {seed}: {name}")
            rows.append({"setting": name, **fit_one(kind, split, seed, quick=quick, model=model, train=train)})
    return rows


# ====================================================================== report
def _mean_sd(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _mean(rows: list[dict], model: str, key: str) -> float:
    return statistics.mean(r[key] for r in rows if r["model"] == model)


def _versus(rows: list[dict], seeds: list[int], model: str, name: str, ease: float) -> str:
    """One line: ``model``'s mean test NDCG@100 against EASE's, and on how many seeds it is >=."""
    mean = _mean(rows, model, "ndcg@100")
    test = {(r["model"], r["seed"]): r["ndcg@100"] for r in rows}
    wins = sum(test[(model, s)] >= test[("ease", s)] for s in seeds)
    return (f"- {name} NDCG@100 {mean:.4f} vs EASE {ease:.4f}: **{'met' if mean >= ease else 'not met'}** "
            f"({mean - ease:+.4f}; {name} >= EASE on {wins} of {len(seeds)} seeds)")


def _paired(rows: list[dict], seeds: list[int], model: str, key: str = "ndcg@100", base: str = "ease") -> str:
    """``model`` against ``base`` on ``key``: the mean paired difference over seeds, its standard
    error over the seeds, and (NDCG@100) the one over every test user's paired difference."""
    by = {(r["model"], r["seed"]): r for r in rows}
    diffs = [by[(model, s)][key] - by[(base, s)][key] for s in seeds]
    text = f"{statistics.mean(diffs):+.4f}"
    if len(seeds) > 1:
        text += f" ± {statistics.stdev(diffs) / len(seeds) ** 0.5:.4f} (seeds)"
    if key == "ndcg@100" and all("ndcg_users" in by[(m, s)] for m in (model, base) for s in seeds):
        users = np.concatenate([np.subtract(by[(model, s)]["ndcg_users"], by[(base, s)]["ndcg_users"]) for s in seeds])
        text += f", ± {users.std(ddof=1) / len(users) ** 0.5:.4f} ({len(users)} users)"
    return text


def _default_line(rows: list[dict], seeds: list[int], ease: float) -> list[str]:
    """The implicit default against EASE: the NDCG@100 ratio (target 1.02) and Recall@20."""
    mean = _mean(rows, "easedae", "ndcg@100")
    recall, ease_recall = _mean(rows, "easedae", "recall@20"), _mean(rows, "ease", "recall@20")
    ratio = mean / ease
    wins = sum(r["ndcg@100"] >= next(e["ndcg@100"] for e in rows if e["model"] == "ease" and e["seed"] == r["seed"])
               for r in rows if r["model"] == "easedae")
    return [
        f"- easedae (the default) NDCG@100 {mean:.4f} / EASE's {ease:.4f} = **{ratio:.4f}x** (target 1.02x: "
        f"**{'met' if ratio >= 1.02 else 'not met'}**); paired difference {_paired(rows, seeds, 'easedae')}; "
        f">= EASE on {wins} of {len(seeds)} seeds",
        f"- easedae Recall@20 {recall:.4f} vs EASE {ease_recall:.4f}: "
        f"**{'met' if recall >= ease_recall else 'not met'}** ({_paired(rows, seeds, 'easedae', 'recall@20')})",
    ]


def report(res: dict[str, Any], command: str) -> str:
    lines = [f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {_doc.machine()}; torch threads 1. "
             f"Load average after: {load_text()} (other jobs shared the cores: read the times as rough).", "",
             f"Command: `{command}`", "",
             f"Seeds {', '.join(map(str, res['seeds']))}: {res['val_users']} validation and "
             f"{res['test_users']} test users "
             "per seed; mean ± standard deviation over the seeds.", ""]
    for name, data in res["datasets"].items():
        rows = data["rows"]
        lines += [f"**{data['label']}**, ratings >= 4: {data['positives']:,} positives, {data['users']:,} users x "
                  f"{data['items']:,} items.", "",
                  "| model | Recall@20 | Recall@50 | NDCG@100 | validation NDCG@100 | fit s |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        models = list(dict.fromkeys(r["model"] for r in rows))
        for model in models:
            mine = [r for r in rows if r["model"] == model]
            cells = [_mean_sd([r[m] for r in mine]) for m in METRICS]
            val = _mean_sd([r["val_ndcg@100"] for r in mine])
            fit = statistics.mean(r["fit_seconds"] for r in mine)
            lines.append(f"| {model} | {' | '.join(cells)} | {val} | {fit:.1f} |")
        lines.append("")
        if {"multvae", "ease", "popularity"} <= set(models):
            vae, ease, pop = (_mean(rows, m, "ndcg@100") for m in ("multvae", "ease", "popularity"))
            lines += [
                *(_default_line(rows, res["seeds"], ease) if "easedae" in models else []),
                *([_versus(rows, res["seeds"], "recvae", "RecVAE", ease)] if "recvae" in models else []),
                _versus(rows, res["seeds"], "multvae", "Mult-VAE", ease),
                *([f"- RecVAE NDCG@100 {_mean(rows, 'recvae', 'ndcg@100'):.4f} vs Mult-VAE {vae:.4f}: "
                   f"**{'met' if _mean(rows, 'recvae', 'ndcg@100') >= vae else 'not met'}** "
                   f"({_paired(rows, res['seeds'], 'recvae', base='multvae')})"] if "recvae" in models else []),
                f"- Mult-VAE NDCG@100 / popularity's = {vae / pop:.2f}x: "
                f"**{'met' if vae >= 1.5 * pop else 'not met'}** "
                "(target 1.5x)", "",
            ]
    return "\n".join(lines) + "\n"


def report_tune(rows: list[dict[str, Any]], command: str) -> str:
    seeds = sorted({r["seed"] for r in rows})
    lines = [f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {_doc.machine()}; torch threads 1.", "",
             f"Command: `{command}` (ML-100K, seeds {', '.join(map(str, seeds))}). Choices read the validation "
             "column only; the test column is shown for the record.", "",
             "| setting | validation NDCG@100 | test NDCG@100 | fit s |", "| --- | ---: | ---: | ---: |"]
    for name in dict.fromkeys(r["setting"] for r in rows):
        mine = [r for r in rows if r["setting"] == name]
        fit = statistics.mean(r["fit_seconds"] for r in mine)
        lines.append(f"| {name} | {_mean_sd([r['val_ndcg@100'] for r in mine])} | "
                     f"{_mean_sd([r['ndcg@100'] for r in mine])} | {fit:.1f} |")
    return "\n".join(lines) + "\n"


def _joined(paths: list[Path]) -> dict[str, Any]:
    """The datasets of several ``--json`` runs in one result (they must share seeds and users)."""
    parts = [json.loads(p.read_text()) for p in paths]
    first = parts[0]
    for part in parts[1:]:
        if [part[k] for k in ("seeds", "val_users", "test_users")] != [first[k] for k in ("seeds", "val_users", "test_users")]:
            raise SystemExit("--from-json: the runs differ in seeds or users; join only runs of one protocol")
    return {**first, "datasets": {name: d for part in parts for name, d in part["datasets"].items()},
            "command": "`, `".join(part.get("command", "?") for part in parts)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml-100k,synthetic,synthetic-popular",
                        help="comma-separated: ml-100k, synthetic, synthetic-popular")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--val-users", type=int, default=100)
    parser.add_argument("--test-users", type=int, default=100)
    parser.add_argument("--tune", action="store_true", help="the validation-only search behind the defaults")
    parser.add_argument("--quick", action="store_true", help="3 epochs: a smoke run (no doc update)")
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--from-json", help="comma-separated --json files: report them instead of running")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    command = "AEREC_DATA_HOME=... python benchmarks/implicit_topn.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    if args.from_json:
        res = _joined([Path(p) for p in args.from_json.split(",")])
        text, markers, raw = report(res, f"{res['command']}` joined by `{command}"), MAIN_BLOCK, res
    elif args.tune:
        rows = tune(seeds, val_users=args.val_users, test_users=args.test_users, quick=args.quick)
        text, markers, raw = report_tune(rows, command), TUNE_BLOCK, rows
    else:
        res = run(args.data.split(","), seeds, args.models.split(","), val_users=args.val_users,
                  test_users=args.test_users, quick=args.quick)
        res["command"] = command
        text, markers, raw = report(res, command), MAIN_BLOCK, res
    print(text)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1, default=float))
    if not (args.quick or args.no_doc):
        _doc.write_block(markers, text, section=SECTION, intro=INTRO)


if __name__ == "__main__":
    main()
