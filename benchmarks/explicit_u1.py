"""Speed and accuracy side by side on MovieLens 100K u1: the course's loop, aerec, Surprise.

One script, one process, the same data (``$AEREC_DATA_HOME/ml-100k/u1.base`` / ``u1.test``):

(a) the course's stacked autoencoder loop (``benchmarks/course_loop.py``), 200 epochs, with
    the test figure after every epoch (off the clock), so its time to reach a test
    ``rmse_per_user`` <= 0.956 is read off, as well as its full 200-epoch time and quality;
(b) aerec ``--model sae --preset course`` (the course's recipe inside aerec's trainer), with
    the same per-epoch test probe;
(c) aerec's default model as ``aerec train`` would fit it, once per thread count of
    ``--aerec-threads`` (default: 1 and torch's default): wall time to its best validation
    epoch, total fit time, test RMSE / MAE / rmse_per_user, and the time to reach test
    rmse_per_user <= 0.956. For that last figure only, the test set is scored after every
    epoch by a probe whose time is taken off the clock; model selection still uses the
    validation ratings carved from u1.base, never the test;
(s) the same default model with the seeds of ``--seeds`` (one thread): mean and spread;
(d) Surprise's BaselineOnly, SVD, SVD++ and KNNBaseline with their defaults (``random_state=0``
    for SVD and SVD++): fit time and test figures.

The course loop, aerec's ``sae`` preset and Surprise run with ``--threads`` CPU threads (default
1: the speed anchor, the course loop on one core (about 0.36 s an epoch on ML-100K), its fastest setting, and Surprise is
single-threaded anyway). Every row records its thread count and the 1-minute load average when
it started. Prints markdown and the ratios, and rewrites the generated part of the section
"## Explicit ratings: ML-100K u1" of docs/benchmarks.md (not with ``--quick``, a smoke run with
a few epochs, nor with ``--no-doc``).

``--parts folds`` (not among the default parts: it takes a few minutes of its own) runs aerec's
default model and the four Surprise algorithms on each of the five folds u1..u5 and writes its
own generated block, so either part can be rerun without touching the other's figures.

    AEREC_DATA_HOME=/path/to/data python benchmarks/explicit_u1.py [--quick] [--json FILE]
    AEREC_DATA_HOME=/path/to/data python benchmarks/explicit_u1.py --parts folds

Needs ``scikit-surprise`` for (d) and the folds (``pip install scikit-surprise``, or the
``bench`` extra); its rows say so when it is missing.
"""

from __future__ import annotations

import os

# As the aerec command does: OpenMP threads sleep instead of spinning while they wait. libgomp
# reads this only when torch loads, so it is set before any import that may load torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import datetime as _dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _doc  # noqa: E402  (benchmarks/_doc.py: machine line, doc blocks)
import course_loop  # noqa: E402  (benchmarks/course_loop.py)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Explicit ratings: ML-100K u1"
MAIN_BLOCK = "explicit_u1.py"  # the generated blocks' names (their markers: _doc.markers)
FOLDS_BLOCK = "explicit_u1.py --parts folds"
TARGET = course_loop.TARGET
TORCH_DEFAULT_THREADS = torch.get_num_threads()  # read before anything sets it
DEFAULT_PARTS = "course,sae,default,seeds,surprise"
ALL_PARTS = {"course", "sae", "default", "seeds", "surprise", "folds"}
FOLDS = ("u1", "u2", "u3", "u4", "u5")
SURPRISE_ALGOS = ("BaselineOnly", "SVD", "SVD++", "KNNBaseline")

INSTALL_SURPRISE = (
    "pip install scikit-surprise (if its build fails: pip install numpy cython, then "
    "pip install scikit-surprise --no-build-isolation)"
)


log = _doc.log


def load_now() -> float:
    """The 1-minute load average: how many other jobs shared the cores when a row started."""
    return os.getloadavg()[0]


def load_text() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


# ====================================================================== aerec, with a test probe
@contextlib.contextmanager
def _capture_net():
    """Expose the network a Recommender is training (benchmark instrumentation, not library API).

    The trainer's callbacks receive an ``EpochRecord`` only, so the probe takes the network
    from the ``Trainer.fit`` call instead.
    """
    import aerec.recommender as rec_mod

    real = rec_mod.Trainer
    box: dict[str, Any] = {}

    class Capturing(real):  # type: ignore[misc, valid-type]
        def fit(self, net, rows, **kw):
            box["net"] = net
            return super().fit(net, rows, **kw)

    rec_mod.Trainer = Capturing
    try:
        yield box
    finally:
        rec_mod.Trainer = real


def fit_with_probe(model, train, test, *, probe: bool = True) -> dict[str, Any]:
    """Fit ``model`` on ``train``; after every epoch score ``test`` with the weights of that moment.

    The probe's time is subtracted from the clock: ``seconds`` are what the fit alone took, from
    the call of ``fit`` (matrix building included) to the end of each epoch. The test figures
    never reach the trainer; selection and early stopping use the validation part as usual.
    """
    from aerec.data.matrix import RatingMatrix
    from aerec.evaluation import evaluate_ratings

    epochs: list[dict[str, Any]] = []
    spent = {"probe": 0.0}
    full = RatingMatrix.from_ratings(train) if probe else None  # the inputs at prediction time: every training rating

    with _capture_net() as box:
        def on_epoch(record) -> None:
            now = time.perf_counter()
            row = {"epoch": record.epoch, "val_rmse": record.val_rmse, "seconds": now - t0 - spent["probe"],
                   "epoch_seconds": record.seconds}
            if probe:
                net = box["net"]
                was_training = net.training
                model.net_ = net.eval()
                if not hasattr(model, "rows_"):
                    model._set_data(full)  # predictions read the network live; this sets the inputs and the fallback
                m = evaluate_ratings(model, test)
                net.train(was_training)
                row.update(test_rmse=m["rmse"], test_rmse_per_user=m["rmse_per_user"])
            epochs.append(row)
            spent["probe"] += time.perf_counter() - now

        t0 = time.perf_counter()
        model.fit(train, callbacks=[on_epoch])
        total = time.perf_counter() - t0 - spent["probe"]
    result = model.train_result_
    best = result.best_epoch
    to_best = next((e["seconds"] for e in epochs if e["epoch"] == best), None) if best else None
    reach = next((e for e in epochs if e.get("test_rmse_per_user", np.inf) <= TARGET), None)
    return {
        "epochs_run": len(epochs),
        "best_epoch": best,
        "best_val_rmse": result.best_val,
        "fit_seconds": total,
        "seconds_to_best": to_best,
        "reached": None if reach is None else {"epoch": reach["epoch"], "seconds": reach["seconds"]},
        "test": evaluate_ratings(model, test),
        "history": epochs,
    }


def run_aerec(kind: str | None, train, test, *, threads: int, quick: bool, seed: int = 0, probe: bool = True,
              train_settings: dict[str, Any] | None = None, **params) -> dict[str, Any]:
    """Fit aerec's ``kind`` (None: the default model) with ``threads`` torch threads; see :func:`fit_with_probe`.

    ``train_settings``: ``[train]`` values to set (e.g. ``{"batch_format": "dense"}``).
    """
    from aerec.config import Config
    from aerec.recommender import Recommender
    from aerec.tuning import resolved_config

    model_table = {"kind": kind, **params} if kind else dict(Recommender().config.model, **params)
    train_table = {**(train_settings or {}), **({"epochs": 3} if quick else {})}
    config = Config(model=model_table, train=train_table, run={"threads": threads, "seed": seed, "device": "cpu"})
    load = load_now()
    model = Recommender(config=config)
    out = fit_with_probe(model, train, test, probe=probe)
    resolved = resolved_config(config)
    out.update(kind=config.kind, preset=params.get("preset"), threads=threads, seed=seed, load=load,
               settings={"model": resolved.model, "train": resolved.train})
    return out


def warm_up() -> None:
    """Pay a fresh process's one-off costs before any clock starts, so that no row carries them:
    the first torch optimiser a process builds imports ``torch._dynamo`` (about 1.4 s here),
    which would otherwise land on whichever system is timed first."""
    from aerec.recommender import Recommender  # noqa: F401  (aerec's modules, imported once)

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


# ====================================================================== Surprise
def run_surprise(folder: Path, *, quick: bool, split: str = "u1") -> dict[str, Any]:
    """Fit time and test figures of four Surprise algorithms with their defaults on ``split``."""
    try:
        import surprise
        from surprise import SVD, BaselineOnly, Dataset, KNNBaseline, Reader, SVDpp
        from surprise.model_selection import PredefinedKFold
    except ImportError as exc:
        return {"error": f"scikit-surprise is not installed ({exc}); {INSTALL_SURPRISE}"}
    from aerec.evaluation import mae, rmse, rmse_per_user

    data = Dataset.load_from_folds([(str(folder / f"{split}.base"), str(folder / f"{split}.test"))], reader=Reader("ml-100k"))
    trainset, testset = next(PredefinedKFold().split(data))
    epochs = {"n_epochs": 2} if quick else {}
    algos: dict[str, Callable[[], Any]] = {
        "BaselineOnly": lambda: BaselineOnly(verbose=False),
        "SVD": lambda: SVD(random_state=0, **epochs),
        "SVD++": lambda: SVDpp(random_state=0, **epochs),
        "KNNBaseline": lambda: KNNBaseline(verbose=False),
    }
    rows = {}
    for name in SURPRISE_ALGOS:
        algo = algos[name]()
        load = load_now()
        t0 = time.perf_counter()
        algo.fit(trainset)
        fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        preds = algo.test(testset)
        test_s = time.perf_counter() - t1
        est = np.array([p.est for p in preds])
        truth = np.array([p.r_ui for p in preds])
        users = np.array([p.uid for p in preds])
        impossible = sum(bool(p.details.get("was_impossible")) for p in preds)
        rows[name] = {
            "fit_seconds": fit_s, "test_seconds": test_s, "load": load,
            "test": {"rmse": rmse(est, truth), "mae": mae(est, truth), "n": len(preds),
                     "n_fallback": impossible, "rmse_per_user": rmse_per_user(est, truth, users)},
        }
        log(f"surprise {name} on {split}: fit {fit_s:.1f} s, test RMSE {rows[name]['test']['rmse']:.4f}")
    return {"version": surprise.__version__, "algorithms": rows}


# ====================================================================== course loop
def run_course(folder: Path, *, quick: bool) -> dict[str, Any]:
    epochs = 5 if quick else 200
    load = load_now()
    run = course_loop.run_course(folder, epochs=epochs, seed=0, log=log, log_every=20)
    out = run.to_json()
    out["test"] = {"rmse_per_user": run.final_test_loss, "rmse": run.final_rmse, "mae": run.final_mae, "n": run.n_test}
    out["epochs_run"] = epochs
    out["train_seconds"] = run.train_seconds
    out["load"] = load
    return out


# ====================================================================== seeds and folds
def run_seeds(split, seeds: list[int], *, threads: int, quick: bool, reuse: dict | None) -> list[dict[str, Any]]:
    """aerec's default model with each seed (``reuse``: an earlier run with one of these seeds and threads)."""
    out = []
    for seed in seeds:
        if reuse is not None and reuse["seed"] == seed and reuse["threads"] == threads:
            out.append(reuse)
            continue
        log(f"(s) aerec default, seed {seed}")
        out.append(run_aerec(None, split.train, split.test, threads=threads, quick=quick, seed=seed))
    return out


def run_folds(folder: Path, *, threads: int, quick: bool) -> dict[str, Any]:
    """aerec's default model (no probe) and Surprise's four defaults on u1..u5."""
    from aerec.data.splits import canonical_split

    folds = {}
    for name in FOLDS[:2] if quick else FOLDS:
        split = canonical_split(folder, name)
        log(f"(f) fold {name}: aerec default")
        aerec = run_aerec(None, split.train, split.test, threads=threads, quick=quick, probe=False)
        aerec.pop("history")
        folds[name] = {"aerec": aerec, "surprise": run_surprise(folder, quick=quick, split=name)}
    return folds


# ====================================================================== report
def _f(v: Any, fmt: str = ".4f") -> str:
    return "-" if v is None else format(v, fmt)


def _reach(r: dict | None) -> str:
    return "not reached" if r is None else f"{r['seconds']:.1f} s (epoch {r['epoch']})"


def _threads(n: int) -> str:
    return f"{n}" + (" (torch default)" if n == TORCH_DEFAULT_THREADS and n != 1 else "")


def _spread(values: list[float], fmt: str = ".4f") -> str:
    """``mean +- sd (min-max)`` (sample standard deviation)."""
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{fmt}} +- {sd:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def _header(res: dict[str, Any]) -> list[str]:
    return [
        f"Run {res['date']} on {res['machine']}. Load average (1/5/15 min) before: {res['load_before']}, "
        f"after: {res['load_after']}" + (" (other jobs were running: read the times as rough)." if res["busy"] else "."),
        "",
        f"Command: `{res['command']}`" + (" (quick smoke run: few epochs; not comparable)" if res["quick"] else ""),
        "",
    ]


def markdown(res: dict[str, Any]) -> str:
    """The generated main block: table, ratios, seeds, settings."""
    lines = _header(res) + [
        f"| system | threads | load | epochs | fit s (training clock) | s to best validation "
        f"| s to test rmse_per_user <= {TARGET} | test RMSE | test MAE | test rmse_per_user |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    c = res.get("course")
    if c:
        lines.append(
            f"| course loop (per-user RMSprop) | {c['threads']} | {c['load']:.1f} | {c['epochs_run']} | {c['train_seconds']:.1f} "
            f"| - (no validation) | {_reach(c['reached'])} | {_f(c['test'].get('rmse'))} | {_f(c['test'].get('mae'))} "
            f"| {_f(c['test']['rmse_per_user'])} |"
        )
    rows = ([("aerec `--model sae --preset course`", res["sae_course"])] if res.get("sae_course") else []) + [
        (f"aerec default (`{a['kind']}`)", a) for a in res.get("defaults", [])
    ]
    for label, a in rows:
        t = a["test"]
        lines.append(
            f"| {label} | {_threads(a['threads'])} | {a['load']:.1f} | {a['epochs_run']} (best {a['best_epoch'] or '-'}) "
            f"| {a['fit_seconds']:.1f} | {_f(a['seconds_to_best'], '.1f')} | {_reach(a['reached'])} | {t['rmse']:.4f} "
            f"| {t['mae']:.4f} | {t['rmse_per_user']:.4f} |"
        )
    s = res.get("surprise") or {}
    if "error" in s:
        lines.append(f"| Surprise | 1 | - | - | - | - | - | - | - | - |  \n\nSurprise: {s['error']}")
    for name, r in (s.get("algorithms") or {}).items():
        t = r["test"]
        lines.append(f"| Surprise {name} (defaults) | 1 | {r['load']:.1f} | - | {r['fit_seconds']:.1f} | - | - "
                     f"| {t['rmse']:.4f} | {t['mae']:.4f} | {t['rmse_per_user']:.4f} |")
    lines += ["", "\"load\" is the 1-minute load average when the row started (2 cores).", "", "Ratios:", ""]
    lines += [f"- {text}" for text in ratios(res)]
    seeds = res.get("seeds")
    if seeds:
        lines += ["", f"aerec default over seeds {', '.join(str(a['seed']) for a in seeds)} "
                      f"({seeds[0]['threads']} thread{'s' if seeds[0]['threads'] > 1 else ''}; the seed sets the validation "
                      "carving and the initial weights):", "",
                  "| seed | epochs | fit s | s to best validation | s to test rmse_per_user <= "
                  f"{TARGET} | test RMSE | test MAE | test rmse_per_user |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for a in seeds:
            t = a["test"]
            lines.append(f"| {a['seed']} | {a['epochs_run']} (best {a['best_epoch'] or '-'}) | {a['fit_seconds']:.1f} "
                         f"| {_f(a['seconds_to_best'], '.1f')} | {_reach(a['reached'])} | {t['rmse']:.4f} | {t['mae']:.4f} "
                         f"| {t['rmse_per_user']:.4f} |")
        lines += ["", f"- test RMSE {_spread([a['test']['rmse'] for a in seeds])}; "
                      f"rmse_per_user {_spread([a['test']['rmse_per_user'] for a in seeds])}; "
                      f"fit {_spread([a['fit_seconds'] for a in seeds], '.1f')} s (mean +- sd (min-max))."]
    d = next(iter(res.get("defaults", [])), None)
    if d:
        lines += ["", settings_line(d)]
    if s.get("version"):
        lines += ["", f"Surprise {s['version']}."]
    return "\n".join(lines) + "\n"


def settings_line(d: dict[str, Any]) -> str:
    m, tr = d["settings"]["model"], d["settings"]["train"]
    return (
        f"aerec default settings: `{d['kind']}`, hidden {m.get('hidden')}, {m.get('activation')} encoder, "
        f"{m.get('orientation')}-based, l2 {m.get('l2')}, baseline {m.get('baseline')}, mask_input {m.get('mask_input')}, "
        f"optimizer {tr.get('optimizer')}"
        + (f" ({tr.get('lbfgs_iterations')} iterations an epoch)" if tr.get("optimizer") == "lbfgs" else
           f" (lr {tr.get('lr')}, batch {tr.get('batch_size')})")
        + f", up to {tr.get('epochs')} epochs, patience {tr.get('patience')}, validation {tr.get('validation')} "
        "of the training ratings"
        + (", then a refit on all of them for the chosen epochs (train.refit)." if tr.get("refit") else ".")
    )


def ratios(res: dict[str, Any]) -> list[str]:
    out = []
    c = res.get("course")
    s = (res.get("surprise") or {}).get("algorithms") or {}
    for d in res.get("defaults", []):
        who = f"aerec default ({d['threads']} thread{'s' if d['threads'] > 1 else ''})"
        if c:
            if c["reached"] and d["reached"]:
                out.append(f"time to test rmse_per_user <= {TARGET}: course {c['reached']['seconds']:.1f} s / {who} "
                           f"{d['reached']['seconds']:.1f} s = **{c['reached']['seconds'] / d['reached']['seconds']:.0f}x**")
            else:
                missed = [n for n, r in (("the course", c["reached"]), (who, d["reached"])) if r is None]
                out.append(f"time to test rmse_per_user <= {TARGET}: not reached by {' and '.join(missed)}")
            out.append(f"full runs: course {c['epochs_run']} epochs {c['train_seconds']:.1f} s / {who} fit "
                       f"{d['fit_seconds']:.1f} s = {c['train_seconds'] / d['fit_seconds']:.1f}x")
        if "SVD++" in s and d["seconds_to_best"]:
            out.append(f"Surprise SVD++ fit {s['SVD++']['fit_seconds']:.1f} s / {who} time to best validation epoch "
                       f"{d['seconds_to_best']:.1f} s = **{s['SVD++']['fit_seconds'] / d['seconds_to_best']:.1f}x**")
            # A stricter bar than the course's: SVD++'s own test RMSE (read off the probe).
            bar = s["SVD++"]["test"]["rmse"]
            hit = next((e for e in d["history"] if e.get("test_rmse", np.inf) <= bar), None)
            if hit is not None:
                out.append(f"{who} passes SVD++'s test RMSE ({bar:.4f}) after {hit['seconds']:.1f} s (epoch {hit['epoch']}); "
                           f"SVD++ takes {s['SVD++']['fit_seconds']:.1f} s to fit")
    b = res.get("sae_course")
    if b:
        v = b["test"]["rmse_per_user"]
        gap = 0.0 if 0.95 <= v <= 0.96 else min(abs(v - 0.95), abs(v - 0.96))
        verdict = "within" if gap <= 0.02 else "**outside**"
        out.append(f"aerec `sae --preset course` test rmse_per_user {v:.4f}: {verdict} 0.02 of the course's 0.95-0.96"
                   + (f" (the course loop here: {c['test']['rmse_per_user']:.4f})" if c else ""))
    d = next(iter(res.get("defaults", [])), None)
    if d and "SVD++" in s:
        out.append(f"test RMSE: aerec default {d['test']['rmse']:.4f} vs SVD++ {s['SVD++']['test']['rmse']:.4f} "
                   f"({d['test']['rmse'] - s['SVD++']['test']['rmse']:+.4f})")
    return out


def markdown_folds(res: dict[str, Any]) -> str:
    """The generated 5-fold block: test RMSE per fold and the mean, aerec default vs Surprise."""
    folds = res["folds"]
    errors = {f["surprise"]["error"] for f in folds.values() if "error" in f["surprise"]}
    names = [] if errors else list(SURPRISE_ALGOS)
    lines = _header(res) + [
        "| fold | load | aerec default test RMSE | aerec fit s | " + " | ".join(f"Surprise {n}" for n in names)
        + (" | SVD++ fit s |" if "SVD++" in names else " |"),
        "| --- | ---: | ---: | ---: |" + " ---: |" * len(names) + (" ---: |" if "SVD++" in names else ""),
    ]
    for fold, f in folds.items():
        a = f["aerec"]
        algos = f["surprise"].get("algorithms", {})
        cells = [f"{algos[n]['test']['rmse']:.4f}" for n in names]
        lines.append(f"| {fold} | {a['load']:.1f} | {a['test']['rmse']:.4f} | {a['fit_seconds']:.1f} | " + " | ".join(cells)
                     + (f" | {algos['SVD++']['fit_seconds']:.1f} |" if "SVD++" in names else " |"))

    def mean(get) -> str:
        return f"{statistics.mean(get(f) for f in folds.values()):.4f}"

    lines.append(
        f"| **mean** | | **{mean(lambda f: f['aerec']['test']['rmse'])}** "
        f"| {statistics.mean(f['aerec']['fit_seconds'] for f in folds.values()):.1f} | "
        + " | ".join(f"**{mean(lambda f, n=n: f['surprise']['algorithms'][n]['test']['rmse'])}**" if n == "SVD++"
                     else mean(lambda f, n=n: f["surprise"]["algorithms"][n]["test"]["rmse"]) for n in names)
        + (f" | {statistics.mean(f['surprise']['algorithms']['SVD++']['fit_seconds'] for f in folds.values()):.1f} |"
           if "SVD++" in names else " |")
    )
    lines.append("")
    aerec_rmse = [f["aerec"]["test"]["rmse"] for f in folds.values()]
    lines.append(f"- aerec default test RMSE over the {len(folds)} folds: {_spread(aerec_rmse)}; "
                 f"rmse_per_user {_spread([f['aerec']['test']['rmse_per_user'] for f in folds.values()])}.")
    if "SVD++" in names:
        svdpp = [f["surprise"]["algorithms"]["SVD++"]["test"]["rmse"] for f in folds.values()]
        diff = [x - y for x, y in zip(aerec_rmse, svdpp)]
        lines.append(f"- SVD++ test RMSE: {_spread(svdpp)}. aerec default minus SVD++, fold by fold: "
                     + ", ".join(f"{x:+.4f}" for x in diff) + f" (mean {statistics.mean(diff):+.4f}).")
    for e in sorted(errors):
        lines.append(f"- Surprise: {e}")
    first = next(iter(folds.values()))["aerec"]
    lines += ["", f"aerec with {first['threads']} thread, seed 0, no test probe; Surprise with its defaults "
                  "(`random_state=0` for SVD and SVD++). " + settings_line(first)]
    return "\n".join(lines) + "\n"


INTRO = """\
Protocol: the canonical split u1 (80,000 training ratings in `u1.base`, 20,000 test ratings in
`u1.test`). aerec selects its epoch on a validation part carved (seeded) from `u1.base`; the test
file is scored once at the end, and, for the time-to-quality column only, after every epoch by a
probe whose time is not counted. `rmse_per_user` is the course's figure (mean over test users of
each user's RMSE). Times are wall-clock seconds of training only (reading the files excluded).
"""


def render(res: dict[str, Any], *, write: bool) -> None:
    """Print the block(s) of ``res`` and, when ``write``, put them into the doc."""
    blocks = []
    if any(k in res for k in ("course", "sae_course", "defaults", "seeds", "surprise")):
        blocks.append((markdown(res), MAIN_BLOCK))
    if "folds" in res:
        blocks.append((markdown_folds(res), FOLDS_BLOCK))
    for block, name in blocks:
        print(block)
        if write:
            _doc.write_block(name, block, section=SECTION, intro=INTRO)


# ====================================================================== main
def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-home", default=None, help="folder holding ml-100k/ (default: $AEREC_DATA_HOME)")
    p.add_argument("--quick", action="store_true", help="a smoke run: a few epochs each; never written to the doc")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads for the course loop, aerec's sae preset, the seeds and the folds (default 1)")
    p.add_argument("--aerec-threads", default=None,
                   help=f"comma list: thread counts for aerec's default model (default: 1,{TORCH_DEFAULT_THREADS}, "
                        "torch's default here)")
    p.add_argument("--seeds", default="0,1,2", help="comma list of seeds for the default model's spread (default 0,1,2)")
    p.add_argument("--parts", default=DEFAULT_PARTS,
                   help=f"comma list of {', '.join(sorted(ALL_PARTS))} (default {DEFAULT_PARTS}; folds is a run of its own)")
    p.add_argument("--json", default=None, help="also write every figure (per-epoch histories too) to this file")
    p.add_argument("--no-doc", action="store_true", help=f"do not rewrite {DOC.relative_to(ROOT)}")
    p.add_argument("--from-json", default=None, help="rewrite the doc from a --json file of an earlier run (no training)")
    a = p.parse_args(argv)
    if a.from_json:
        res = json.loads(Path(a.from_json).read_text(encoding="utf-8"))
        render(res, write=not res["quick"] and not a.no_doc)
        return 0
    folder = course_loop._ml100k(a.data_home)
    if folder is None:
        print("MovieLens 100K not found: set AEREC_DATA_HOME (or --data-home) to a folder holding ml-100k/ with "
              "u1.base and u1.test; skipped.", file=sys.stderr)
        return 0
    parts = {x.strip() for x in a.parts.split(",") if x.strip()}
    unknown = parts - ALL_PARTS
    if unknown:
        p.error(f"unknown part(s) {sorted(unknown)}")
    aerec_threads = _ints(a.aerec_threads) if a.aerec_threads else list(dict.fromkeys([1, TORCH_DEFAULT_THREADS]))
    seeds = _ints(a.seeds)
    if any(t < 1 for t in [a.threads, *aerec_threads]):
        p.error("thread counts must be >= 1")
    torch.set_num_threads(a.threads)
    warm_up()

    shown = "python benchmarks/explicit_u1.py" + (" --quick" if a.quick else "") + \
        (f" --threads {a.threads}" if a.threads != 1 else "") + \
        (f" --aerec-threads {a.aerec_threads}" if a.aerec_threads else "") + \
        (f" --seeds {a.seeds}" if a.seeds != p.get_default("seeds") else "") + \
        (f" --parts {a.parts}" if a.parts != p.get_default("parts") else "")
    res: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "machine": _doc.machine(),
        "threads": a.threads, "aerec_threads": aerec_threads, "quick": a.quick, "command": f"AEREC_DATA_HOME=... {shown}",
        "load_before": load_text(),
    }
    started = time.perf_counter()
    if "course" in parts:
        log("(a) the course loop")
        torch.set_num_threads(a.threads)
        res["course"] = run_course(folder, quick=a.quick)
    if parts & {"sae", "default", "seeds"}:
        from aerec.data.splits import canonical_split

        split = canonical_split(folder, "u1")
        if "sae" in parts:
            log("(b) aerec sae --preset course")
            res["sae_course"] = run_aerec("sae", split.train, split.test, threads=a.threads, quick=a.quick, preset="course")
        if "default" in parts:
            res["defaults"] = []
            for n in aerec_threads:
                log(f"(c) aerec default model, {n} thread(s)")
                res["defaults"].append(run_aerec(None, split.train, split.test, threads=n, quick=a.quick))
        if "seeds" in parts:
            reuse = next((d for d in res.get("defaults", []) if d["threads"] == a.threads), None)
            res["seeds"] = run_seeds(split, seeds, threads=a.threads, quick=a.quick, reuse=reuse)
    if "surprise" in parts:
        log("(d) Surprise")
        torch.set_num_threads(a.threads)
        res["surprise"] = run_surprise(folder, quick=a.quick)
    if "folds" in parts:
        log("(f) 5-fold u1..u5")
        res["folds"] = run_folds(folder, threads=a.threads, quick=a.quick)
    load_after = os.getloadavg()
    res["load_after"] = load_text()
    res["busy"] = max(load_after[1], float(res["load_before"].split(" / ")[1])) > (os.cpu_count() or 1) * 0.75
    res["seconds"] = time.perf_counter() - started

    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=float), encoding="utf-8")
    render(res, write=not a.quick and not a.no_doc)
    log(f"done in {res['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
