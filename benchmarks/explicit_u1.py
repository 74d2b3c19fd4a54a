"""Speed and accuracy side by side on MovieLens 100K u1: the course's loop, aerec, Surprise.

One script, one process, the same data (``$AEREC_DATA_HOME/ml-100k/u1.base`` / ``u1.test``):

(a) the course's stacked autoencoder loop (``benchmarks/course_loop.py``), 200 epochs, with
    the test figure after every epoch (off the clock), so its time to reach a test
    ``rmse_per_user`` <= 0.956 is read off, as well as its full 200-epoch time and quality;
(b) aerec ``--model sae --preset course`` (the course's recipe inside aerec's trainer);
(c) aerec's default model as ``aerec train`` would fit it: wall time to its best validation epoch,
    total fit time, test RMSE / MAE / rmse_per_user, and the time to reach test rmse_per_user
    <= 0.956. For that last figure only, the test set is scored after every epoch by a probe
    whose time is taken off the clock; model selection still uses the validation ratings
    carved from u1.base, never the test;
(d) Surprise's BaselineOnly, SVD, SVD++ and KNNBaseline with their defaults (``random_state=0``
    for SVD and SVD++): fit time and test figures.

Every system gets the same number of CPU threads (``--threads``, default 1, the speed anchor of
DESIGN §5; Surprise is single-threaded). Prints a markdown table and the ratios, and rewrites the
generated part of the section "## Explicit ratings: ML-100K u1" of docs/benchmarks.md (not with
``--quick``, a smoke run with a few epochs, nor with ``--no-doc``).

    AEREC_DATA_HOME=/path/to/data python benchmarks/explicit_u1.py [--quick] [--threads 1] [--json FILE]

Needs ``scikit-surprise`` for (d) (``pip install scikit-surprise``, or the ``bench`` extra); its
rows say so when it is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import course_loop  # noqa: E402  (benchmarks/course_loop.py)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Explicit ratings: ML-100K u1"
BEGIN, END = "<!-- explicit_u1.py: generated, begin -->", "<!-- explicit_u1.py: generated, end -->"
TARGET = course_loop.TARGET

INSTALL_SURPRISE = (
    "pip install scikit-surprise (if its build fails: pip install numpy cython, then "
    "pip install scikit-surprise --no-build-isolation)"
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ====================================================================== aerec, with a test probe
@contextlib.contextmanager
def _capture_net():
    """Expose the network a Recommender is training (benchmark instrumentation, not library API)."""
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
    full = RatingMatrix.from_ratings(train)  # the inputs at prediction time: every training rating

    with _capture_net() as box:
        def on_epoch(record) -> None:
            now = time.perf_counter()
            row = {"epoch": record.epoch, "val_rmse": record.val_rmse, "seconds": now - t0 - spent["probe"]}
            if probe:
                net = box["net"]
                was_training = net.training
                model.net_ = net.eval()
                if not hasattr(model, "rows_"):
                    model._set_data(full)
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


def run_aerec(kind: str | None, train, test, *, threads: int, quick: bool, **params) -> dict[str, Any]:
    from aerec.config import Config
    from aerec.recommender import Recommender
    from aerec.tuning import resolved_config

    model_table = {"kind": kind, **params} if kind else dict(Recommender().config.model, **params)
    train_table = {"epochs": 3} if quick else {}
    config = Config(model=model_table, train=train_table, run={"threads": threads, "seed": 0, "device": "cpu"})
    model = Recommender(config=config)
    out = fit_with_probe(model, train, test)
    resolved = resolved_config(config)
    out["kind"] = config.kind
    out["preset"] = params.get("preset")
    out["settings"] = {"model": resolved.model, "train": resolved.train}
    return out


# ====================================================================== Surprise
def run_surprise(folder: Path, *, quick: bool) -> dict[str, Any]:
    """Fit time and test figures of four Surprise algorithms with their defaults."""
    try:
        import surprise
        from surprise import SVD, BaselineOnly, Dataset, KNNBaseline, Reader, SVDpp
        from surprise.model_selection import PredefinedKFold
    except ImportError as exc:
        return {"error": f"scikit-surprise is not installed ({exc}); {INSTALL_SURPRISE}"}
    from aerec.evaluation import mae, rmse, rmse_per_user

    data = Dataset.load_from_folds([(str(folder / "u1.base"), str(folder / "u1.test"))], reader=Reader("ml-100k"))
    trainset, testset = next(PredefinedKFold().split(data))
    epochs = {"n_epochs": 2} if quick else {}
    algos: list[tuple[str, Callable[[], Any]]] = [
        ("BaselineOnly", lambda: BaselineOnly(verbose=False)),
        ("SVD", lambda: SVD(random_state=0, **epochs)),
        ("SVD++", lambda: SVDpp(random_state=0, **epochs)),
        ("KNNBaseline", lambda: KNNBaseline(verbose=False)),
    ]
    rows = {}
    for name, make in algos:
        algo = make()
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
            "fit_seconds": fit_s, "test_seconds": test_s,
            "test": {"rmse": rmse(est, truth), "mae": mae(est, truth), "n": len(preds),
                     "n_fallback": impossible, "rmse_per_user": rmse_per_user(est, truth, users)},
        }
        log(f"surprise {name}: fit {fit_s:.1f} s, test RMSE {rows[name]['test']['rmse']:.4f}")
    return {"version": surprise.__version__, "algorithms": rows}


# ====================================================================== course loop
def run_course(folder: Path, *, quick: bool) -> dict[str, Any]:
    epochs = 5 if quick else 200
    run = course_loop.run_course(folder, epochs=epochs, seed=0, log=log, log_every=20)
    out = run.to_json()
    out["test"] = {"rmse_per_user": run.final_test_loss, "rmse": run.final_rmse, "mae": run.final_mae, "n": run.n_test}
    out["epochs_run"] = epochs
    out["train_seconds"] = run.train_seconds
    return out


# ====================================================================== report
def machine() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip() + ", "
                break
    return (f"{model}{os.cpu_count()} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def _f(v: Any, fmt: str = ".4f") -> str:
    return "-" if v is None else format(v, fmt)


def _reach(r: dict | None) -> str:
    return "not reached" if r is None else f"{r['seconds']:.1f} s (epoch {r['epoch']})"


def markdown(res: dict[str, Any]) -> str:
    """The generated block: table, ratios, settings."""
    lines = [
        f"Run {res['date']} on {res['machine']}; torch threads per system: {res['threads']}. "
        f"Load average (1/5/15 min) before: {res['load_before']}, after: {res['load_after']}"
        + (" (other jobs were running: read the times as rough)." if res["busy"] else "."),
        "",
        f"Command: `{res['command']}`" + (" (quick smoke run: few epochs; not comparable)" if res["quick"] else ""),
        "",
        f"| system | epochs | fit s (training clock) | s to best validation | s to test rmse_per_user <= {TARGET} "
        "| test RMSE | test MAE | test rmse_per_user |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    c = res.get("course")
    if c:
        lines.append(
            f"| course loop (per-user RMSprop, {c['epochs_run']} epochs) | {c['epochs_run']} | {c['train_seconds']:.1f} "
            f"| - (no validation) | {_reach(c['reached'])} | {_f(c['test'].get('rmse'))} | {_f(c['test'].get('mae'))} "
            f"| {_f(c['test']['rmse_per_user'])} |"
        )
    for key, label in (("sae_course", "aerec `--model sae --preset course`"), ("default", None)):
        a = res.get(key)
        if not a:
            continue
        label = label or f"aerec default (`{a['kind']}`)"
        t = a["test"]
        lines.append(
            f"| {label} | {a['epochs_run']} (best {a['best_epoch'] if a['best_epoch'] else '-'}) | {a['fit_seconds']:.1f} "
            f"| {_f(a['seconds_to_best'], '.1f')} | {_reach(a['reached'])} | {t['rmse']:.4f} | {t['mae']:.4f} "
            f"| {t['rmse_per_user']:.4f} |"
        )
    s = res.get("surprise") or {}
    if "error" in s:
        lines.append(f"| Surprise | - | - | - | - | - | - | - |  \n\nSurprise: {s['error']}")
    for name, r in (s.get("algorithms") or {}).items():
        t = r["test"]
        lines.append(f"| Surprise {name} (defaults) | - | {r['fit_seconds']:.1f} | - | - | {t['rmse']:.4f} | {t['mae']:.4f} "
                     f"| {t['rmse_per_user']:.4f} |")
    lines += ["", "Ratios:", ""]
    for text in ratios(res):
        lines.append(f"- {text}")
    d = res.get("default")
    if d:
        m, tr = d["settings"]["model"], d["settings"]["train"]
        lines += [
            "",
            f"aerec default settings: `{d['kind']}`, hidden {m.get('hidden')}, {m.get('activation')} encoder, "
            f"{m.get('orientation')}-based, l2 {m.get('l2')}, optimizer {tr.get('optimizer')}"
            + (f" ({tr.get('lbfgs_iterations')} iterations an epoch)" if tr.get("optimizer") == "lbfgs" else
               f" (lr {tr.get('lr')}, batch {tr.get('batch_size')})")
            + f", up to {tr.get('epochs')} epochs, patience {tr.get('patience')}, validation {tr.get('validation')} "
            "of u1.base.",
        ]
    if s.get("version"):
        lines += ["", f"Surprise {s['version']}."]
    return "\n".join(lines) + "\n"


def ratios(res: dict[str, Any]) -> list[str]:
    out = []
    c, d = res.get("course"), res.get("default")
    s = (res.get("surprise") or {}).get("algorithms") or {}
    if c and d:
        if c["reached"] and d["reached"]:
            out.append(f"time to test rmse_per_user <= {TARGET}: course {c['reached']['seconds']:.1f} s / aerec default "
                       f"{d['reached']['seconds']:.1f} s = **{c['reached']['seconds'] / d['reached']['seconds']:.1f}x**")
        else:
            who = [n for n, r in (("the course", c["reached"]), ("aerec's default", d["reached"])) if r is None]
            out.append(f"time to test rmse_per_user <= {TARGET}: not reached by {' and '.join(who)}")
        out.append(f"full runs: course {c['epochs_run']} epochs {c['train_seconds']:.1f} s / aerec default fit "
                   f"{d['fit_seconds']:.1f} s = {c['train_seconds'] / d['fit_seconds']:.1f}x")
    b = res.get("sae_course")
    if b:
        v = b["test"]["rmse_per_user"]
        gap = 0.0 if 0.95 <= v <= 0.96 else min(abs(v - 0.95), abs(v - 0.96))
        verdict = "within" if gap <= 0.02 else "**outside**"
        out.append(f"aerec `sae --preset course` test rmse_per_user {v:.4f}: {verdict} 0.02 of the course's 0.95-0.96")
    if d and "SVD++" in s and d["seconds_to_best"]:
        out.append(f"Surprise SVD++ fit {s['SVD++']['fit_seconds']:.1f} s / aerec default time to best validation epoch "
                   f"{d['seconds_to_best']:.1f} s = **{s['SVD++']['fit_seconds'] / d['seconds_to_best']:.1f}x**")
    if d and "SVD++" in s:
        out.append(f"test RMSE: aerec default {d['test']['rmse']:.4f} vs SVD++ {s['SVD++']['test']['rmse']:.4f} "
                   f"({d['test']['rmse'] - s['SVD++']['test']['rmse']:+.4f})")
    return out


def write_doc(block: str, doc: Path = DOC) -> None:
    """Replace the generated block of our section (creating the section when missing), atomically."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# aerec benchmarks\n"
    generated = f"{BEGIN}\n{block}{END}\n"
    if SECTION not in text:
        intro = (
            "Protocol: the canonical split u1 (80,000 training ratings in `u1.base`, 20,000 test ratings in\n"
            "`u1.test`). aerec selects its epoch on a validation part carved (seeded) from `u1.base`; the test\n"
            "file is scored once at the end, and, for the time-to-quality column only, after every epoch by a\n"
            "probe whose time is not counted. `rmse_per_user` is the course's figure (mean over test users of\n"
            "each user's RMSE). Times are wall-clock seconds of training only (reading the files excluded).\n"
        )
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{intro}\n{generated}"
    else:
        start = text.index(SECTION)
        nxt = text.find("\n## ", start + len(SECTION))
        end = len(text) if nxt < 0 else nxt + 1
        section = text[start:end]
        if BEGIN in section and END in section:
            a, b = section.index(BEGIN), section.index(END) + len(END) + 1
            section = section[:a] + generated + section[b:]
        else:
            section = section.rstrip("\n") + f"\n\n{generated}"
        text = text[:start] + section + ("\n" if nxt >= 0 and not section.endswith("\n\n") else "") + text[end:]
    fd, tmp = tempfile.mkstemp(dir=doc.parent, prefix=".benchmarks.", suffix=".md")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, doc)


# ====================================================================== main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-home", default=None, help="folder holding ml-100k/ (default: $AEREC_DATA_HOME)")
    p.add_argument("--quick", action="store_true", help="a smoke run: a few epochs each; never written to the doc")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for every system (default 1)")
    p.add_argument("--parts", default="course,sae,default,surprise", help="comma list of course, sae, default, surprise")
    p.add_argument("--json", default=None, help="also write every figure (per-epoch histories too) to this file")
    p.add_argument("--no-doc", action="store_true", help=f"do not rewrite {DOC.relative_to(ROOT)}")
    p.add_argument("--from-json", default=None, help="rewrite the doc from a --json file of an earlier run (no training)")
    a = p.parse_args(argv)
    if a.from_json:
        res = json.loads(Path(a.from_json).read_text(encoding="utf-8"))
        block = markdown(res)
        print(block)
        if not res["quick"] and not a.no_doc:
            write_doc(block)
        return 0
    folder = course_loop._ml100k(a.data_home)
    if folder is None:
        print("MovieLens 100K not found: set AEREC_DATA_HOME (or --data-home) to a folder holding ml-100k/ with "
              "u1.base and u1.test; skipped.", file=sys.stderr)
        return 0
    parts = {x.strip() for x in a.parts.split(",") if x.strip()}
    unknown = parts - {"course", "sae", "default", "surprise"}
    if unknown:
        p.error(f"unknown part(s) {sorted(unknown)}")
    torch.set_num_threads(a.threads)

    shown = "python benchmarks/explicit_u1.py" + (" --quick" if a.quick else "") + \
        (f" --threads {a.threads}" if a.threads != 1 else "") + (f" --parts {a.parts}" if a.parts != p.get_default("parts") else "")
    res: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
        "threads": a.threads, "quick": a.quick, "command": f"AEREC_DATA_HOME=... {shown}",
        "load_before": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
    started = time.perf_counter()
    if "course" in parts:
        log("(a) the course loop")
        res["course"] = run_course(folder, quick=a.quick)
    if "sae" in parts or "default" in parts:
        from aerec.data.splits import canonical_split

        split = canonical_split(folder, "u1")
        if "sae" in parts:
            log("(b) aerec sae --preset course")
            res["sae_course"] = run_aerec("sae", split.train, split.test, threads=a.threads, quick=a.quick, preset="course")
        if "default" in parts:
            log("(c) aerec default model")
            res["default"] = run_aerec(None, split.train, split.test, threads=a.threads, quick=a.quick)
    if "surprise" in parts:
        log("(d) Surprise")
        res["surprise"] = run_surprise(folder, quick=a.quick)
    load_after = os.getloadavg()
    res["load_after"] = " / ".join(f"{x:.1f}" for x in load_after)
    res["busy"] = max(load_after[1], float(res["load_before"].split(" / ")[1])) > (os.cpu_count() or 1) * 0.75
    res["seconds"] = time.perf_counter() - started

    block = markdown(res)
    print(block)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=float), encoding="utf-8")
    if not a.quick and not a.no_doc:
        write_doc(block)
        log(f"wrote the section {SECTION!r} of {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
