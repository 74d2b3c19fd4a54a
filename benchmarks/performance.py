"""How fast aerec trains, and why: the sparse path, throughput against the machine's peak, time to quality.

One process, one thread for training unless a row says otherwise, every ratio from figures of
the same run. Parts (``--parts``, default all of them, in this order):

``peak``        the machine's dense matmul peak: ``torch.mm`` of two 2048 x 2048 float32
                matrices, best of 5, with 1 and with 2 threads (GFLOP/s = 2 n^3 / s).
``crossover``   one training step (forward, backward) of an autoencoder on a random batch,
                dense path against sparse path, over densities and shapes: where the rule
                ``SPARSE_BELOW_DENSITY`` of :func:`aerec.training.choose_batch_format` comes from.
``quality``     time to the course's quality on ML-100K u1 (test ``rmse_per_user`` <= 0.956):
                the course's loop (``benchmarks/course_loop.py``, stopped at the first epoch
                that reaches it) against aerec's default on the dense and on the sparse path,
                seeds 0, 1, 2; test figures by a probe off the clock (``explicit_u1.fit_with_probe``).
``throughput``  every model family with its default settings on ML-100K u1.base (the implicit
                ones on its ratings >= 4), 3 epochs, no validation: seconds an epoch, ratings a
                second, and on the dense path the achieved GFLOP/s against the measured peak.
                FLOPs are counted, not estimated from time: a forward hook counts the rows each
                training forward pass reads; a row costs ``2 M`` forward and ``4 M - 2 M_1``
                backward, ``M`` the multiply-adds of the network's weight matrices for one
                row, ``M_1`` the first layer's (no gradient is taken for the input).
``compile``     ``torch.compile`` on the dense minibatch path (the dae family's network):
                compile time and the epoch time after it, against eager.

    AEREC_DATA_HOME=/path/to/data python benchmarks/performance.py [--parts peak,quality] [--json FILE]

Rewrites the block ``performance.py`` of the section "## Performance: ..." of docs/benchmarks.md
(unless ``--no-doc``; ``--from-json FILE`` re-renders a saved run without measuring).
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
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _doc  # noqa: E402
import course_loop  # noqa: E402
import explicit_u1  # noqa: E402

ALL_PARTS = ("peak", "crossover", "quality", "throughput", "compile")
TARGET = course_loop.TARGET
FAMILIES = ("sae", "autorec", "deep", "dae", "sparse", "multvae", "multdae", "cdae")
IMPLICIT = {"multvae", "multdae", "cdae"}
log = _doc.log


# ====================================================================== peak
def matmul_peak(threads: int, size: int = 2048, reps: int = 5) -> dict[str, Any]:
    """Best-of-``reps`` GFLOP/s of a ``size`` x ``size`` float32 ``torch.mm`` with ``threads`` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        torch.mm(a, b)  # warm-up: the library's buffers and threads
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return {"threads": threads, "size": size, "seconds": best, "gflops": 2 * size**3 / best / 1e9}


# ====================================================================== crossover
def _step_time(fn, min_seconds: float = 0.5, min_reps: int = 2) -> float:
    fn()  # warm-up
    t0, reps = time.perf_counter(), 0
    while time.perf_counter() - t0 < min_seconds or reps < min_reps:
        fn()
        reps += 1
    return (time.perf_counter() - t0) / reps


def crossover(quick: bool) -> list[dict[str, Any]]:
    """Forward + backward of one batch, dense path vs sparse path, over densities and shapes."""
    import scipy.sparse as sp

    from aerec.data.batches import dense_rows, observed_targets, sparse_batch
    from aerec.losses import masked_mse
    from aerec.models.autoencoder import Autoencoder

    shapes = [  # (rows in the batch, columns, hidden, what it stands for)
        (1650, 943, 500, "ML-100K item rows, the whole matrix (the default's L-BFGS pass)"),
        (64, 1682, 500, "a minibatch of 64 ML-100K-sized user rows"),
        (1024, 26658, 256, "1,024 user rows of the 10^7 synthetic matrix"),
    ]
    densities = (0.01, 0.05, 0.1, 0.2, 0.5)
    rng = np.random.default_rng(0)
    rows_out = []
    for b, n, h, what in shapes[:1] if quick else shapes:
        for d in densities:
            if b * n * d > 6e6:  # the sparse step alone would take many seconds; the trend is clear before
                continue
            nnz = int(b * n * d)
            csr = sp.csr_array((rng.integers(1, 6, nnz).astype(np.float32), (rng.integers(0, b, nnz), rng.integers(0, n, nnz))),
                               shape=(b, n))
            csr.sum_duplicates()
            torch.manual_seed(0)
            net = Autoencoder(n, [h], baseline=True)
            idx = np.arange(b)

            def dense():
                x, mask = dense_rows(csr, idx)
                err, _ = masked_mse(net(x, mask), x, mask)
                net.zero_grad(set_to_none=True)
                err.backward()

            def sparse():
                batch = sparse_batch(csr, idx)
                err, _ = masked_mse(net(batch), *observed_targets(batch, None))
                net.zero_grad(set_to_none=True)
                err.backward()

            t_dense, t_sparse = _step_time(dense), _step_time(sparse)
            rows_out.append({"rows": b, "cols": n, "hidden": h, "what": what, "density": csr.nnz / (b * n), "nnz": csr.nnz,
                             "dense_ms": t_dense * 1e3, "sparse_ms": t_sparse * 1e3})
            log(f"crossover {b} x {n} h {h} density {d}: dense {t_dense * 1e3:.1f} ms, sparse {t_sparse * 1e3:.1f} ms")
    return rows_out


# ====================================================================== quality
def quality(folder: Path, seeds: list[int], quick: bool) -> dict[str, Any]:
    """The course loop until it reaches TARGET, and aerec's default on both paths, seeds ``seeds``."""
    from aerec.data.splits import canonical_split

    log("quality: the course loop, until test rmse_per_user <= 0.956")
    load = _doc.load_text()
    run = course_loop.run_course(folder, epochs=5 if quick else 200, seed=0, log=log, log_every=20, stop_at=TARGET)
    reach = run.time_to()
    course = {"load": load, "epochs_run": len(run.epochs), "epoch_seconds": statistics.median(e["seconds"] for e in run.epochs),
              "reached": None if reach is None else {"epoch": reach[0], "seconds": reach[1]}}
    split = canonical_split(folder, "u1")
    aerec = []
    for fmt in ("sparse", "dense"):
        for seed in seeds:
            log(f"quality: aerec default, {fmt} path, seed {seed}")
            load = _doc.load_text()
            out = explicit_u1.run_aerec(None, split.train, split.test, threads=1, quick=quick, seed=seed,
                                        train_settings={"batch_format": fmt})
            first = out["history"][0]
            aerec.append({
                "path": fmt, "seed": seed, "load": load, "setup_seconds": first["seconds"] - first["epoch_seconds"],
                "first_epoch_seconds": first["epoch_seconds"], "reached": out["reached"], "best_epoch": out["best_epoch"],
                "seconds_to_best": out["seconds_to_best"], "fit_seconds": out["fit_seconds"], "epochs_run": out["epochs_run"],
                "test": out["test"], "epoch1_test_rmse_per_user": first.get("test_rmse_per_user"),
            })
    return {"course": course, "aerec": aerec}


# ====================================================================== throughput
def _weights_per_row(net) -> tuple[int, int]:
    """Multiply-adds of one row's forward pass through the weight matrices, and the first layer's."""
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    total = sum(m.weight.numel() for m in linears)
    if getattr(net, "tied", False):  # the decoder reads the encoder's weights again
        total += sum(m.weight.numel() for m in net.encoder)
    return total, linears[0].weight.numel()


class _RowCounter:
    """Counts the rows that training forward passes read (a forward pre-hook on the network)."""

    def __init__(self) -> None:
        self.with_grad = 0  # rows whose forward pass is followed by a backward one
        self.no_grad = 0  # forward only (dense re-feeding's targets)
        self.sparse = False

    def __call__(self, module, args) -> None:
        if not module.training:
            return  # validation and prediction are not training throughput
        x = args[0]
        rows = x.n_rows if hasattr(x, "n_rows") else int(x.shape[0])
        self.sparse = self.sparse or hasattr(x, "n_rows")
        if torch.is_grad_enabled():
            self.with_grad += rows
        else:
            self.no_grad += rows


def _counting_trainer(box: dict[str, Any]):
    """A Trainer that hooks a :class:`_RowCounter` on the network it trains (benchmark instrumentation)."""
    from aerec.training import Trainer

    class Counting(Trainer):
        def fit(self, net, rows, **kw):
            counter = _RowCounter()
            handle = net.register_forward_pre_hook(counter)
            box.update(net=net, counter=counter, trainer=self, n_rows=rows.shape[0], nnz=rows.nnz)
            try:
                return super().fit(net, rows, **kw)
            finally:
                handle.remove()

    return Counting


def throughput(folder: Path, families: list[str], epochs: int, peak1: float | None) -> list[dict[str, Any]]:
    """Each family with its defaults, ``epochs`` epochs, no validation, one thread; dense and auto path."""
    import aerec.implicit.recommender as implicit_mod
    import aerec.recommender as rec_mod
    from aerec.config import Config
    from aerec.data.splits import canonical_split
    from aerec.implicit.recommender import ImplicitRecommender
    from aerec.registry import get_family
    from aerec.recommender import Recommender
    from aerec.training import choose_batch_format  # noqa: F401  (documents where "auto" is decided)

    split = canonical_split(folder, "u1")
    out = []
    for kind in families:
        implicit = kind in IMPLICIT
        # The sparse path exists for the explicit families whose objective reads observed cells only.
        fam_train = {} if implicit else get_family(kind).train
        paths = ["dense"] if implicit or fam_train.get("dense_refeeding") else ["dense", "auto"]
        for path in paths:
            box: dict[str, Any] = {}
            real = (implicit_mod if implicit else rec_mod).Trainer
            counting = _counting_trainer(box)
            (implicit_mod if implicit else rec_mod).Trainer = counting
            try:
                config = Config(model={"kind": kind}, train={"epochs": epochs, "validation": 0.0, "batch_format": path,
                                                             "patience": 0},
                                run={"threads": 1, "seed": 0, "device": "cpu"})
                load = _doc.load_text()
                model = (ImplicitRecommender if implicit else Recommender)(config=config)
                model.fit(split.train)
            finally:
                (implicit_mod if implicit else rec_mod).Trainer = real
            hist = model.history_
            secs = [r.seconds for r in hist]
            steady = statistics.median(secs[1:]) if len(secs) > 1 else secs[0]
            counter, net = box["counter"], box["net"]
            m_all, m_first = _weights_per_row(net)
            flops = counter.with_grad * (6 * m_all - 2 * m_first) + counter.no_grad * 2 * m_all  # over all epochs
            row = {
                "kind": kind, "path": box["trainer"].batch_format, "asked": path, "load": load, "epochs": len(hist),
                "epoch_seconds": steady, "epoch_seconds_all": secs, "nnz": box["nnz"], "n_rows": box["n_rows"],
                "rows_per_epoch": (counter.with_grad + counter.no_grad) / len(hist),
                "ratings_per_second": box["nnz"] / steady, "optimizer": model.resolved()[1].optimizer,
                "batch_size": model.resolved()[1].batch_size, "orientation": getattr(model.resolved()[0], "orientation", "user"),
                "gflops": None if counter.sparse else flops / sum(secs) / 1e9,
                "macs_per_row": m_all,
            }
            row["percent_of_peak"] = None if row["gflops"] is None or not peak1 else 100 * row["gflops"] / peak1
            out.append(row)
            log(f"throughput {kind} ({row['path']}): {steady:.3f} s/epoch, {row['ratings_per_second']:,.0f} ratings/s"
                + (f", {row['gflops']:.1f} GFLOP/s" if row["gflops"] else ""))
    return out


# ====================================================================== compile
def compile_check(folder: Path, quick: bool) -> dict[str, Any]:
    """Eager against ``torch.compile`` for the dae network's dense minibatch epoch on ML-100K item rows."""
    from aerec.data.batches import dense_rows
    from aerec.data.matrix import RatingMatrix
    from aerec.data.splits import canonical_split
    from aerec.losses import masked_mse
    from aerec.models.autoencoder import Autoencoder

    rows = RatingMatrix.from_ratings(canonical_split(folder, "u1").train).rows("item")
    torch.manual_seed(0)
    net = Autoencoder(rows.shape[1], [500], baseline=True, input_dropout=0.2)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)

    def epoch(forward) -> float:
        t0 = time.perf_counter()
        order = np.random.default_rng(0).permutation(rows.shape[0])
        for s in range(0, len(order), 64):
            x, mask = dense_rows(rows, order[s : s + 64])
            err, count = masked_mse(forward(x, mask), x, mask)
            optimizer.zero_grad()
            (err / count).backward()
            optimizer.step()
        return time.perf_counter() - t0

    eager = [epoch(net) for _ in range(3)]
    out: dict[str, Any] = {"eager_epoch_seconds": statistics.median(eager)}
    if quick:
        return out
    compiled = torch.compile(net)
    try:
        first = epoch(compiled)
        steady = [epoch(compiled) for _ in range(2)]
        out.update(compiled_first_epoch_seconds=first, compiled_epoch_seconds=statistics.median(steady))
    except Exception as exc:  # noqa: BLE001  (any failure of the compiler is the finding)
        out["compile_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    log(f"compile: {out}")
    return out


# ====================================================================== report
def _f(v: Any, fmt: str = ".4f") -> str:
    return "-" if v is None else format(v, fmt)


def _reach(r: dict | None) -> str:
    return "not reached" if r is None else f"{r['seconds']:.2f} s (epoch {r['epoch']})"


def markdown(res: dict[str, Any]) -> str:
    lines = [
        f"Run {res['date']} on {res['machine']}. Load average (1/5/15 min) before: {res['load_before']}, after: "
        f"{res['load_after']}.",
        "",
        f"Command: `{res['command']}`" + (" (quick smoke run: not comparable)" if res["quick"] else ""),
        "",
    ]
    peaks = res.get("peak") or []
    if peaks:
        lines += ["**Dense matmul peak** (`torch.mm`, 2048 x 2048 float32, best of 5): "
                  + "; ".join(f"{p['threads']} thread{'s' if p['threads'] > 1 else ''}: **{p['gflops']:.1f} GFLOP/s**"
                              for p in peaks) + ".", ""]
    q = res.get("quality")
    if q:
        c = q["course"]
        lines += [
            "**Time to the course's quality** (ML-100K u1, test `rmse_per_user` <= 0.956; 1 thread; clocks start "
            "with the data read and the imports warm, the probe's time excluded):",
            "",
            "| system | path | seed | load | setup s | epoch 1 s | s to <= 0.956 | epoch-1 rmse_per_user "
            "| s to best validation (epoch) | fit s | test RMSE | test rmse_per_user |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| course loop (per-user RMSprop) | dense tensor | 0 | {c['load']} | - | {c['epoch_seconds']:.2f} "
            f"| {_reach(c['reached'])} | - | - | - | - | - |",
        ]
        for a in q["aerec"]:
            t = a["test"]
            lines.append(
                f"| aerec default (`autorec`) | {a['path']} | {a['seed']} | {a['load']} | {a['setup_seconds']:.2f} "
                f"| {a['first_epoch_seconds']:.2f} | {_reach(a['reached'])} | {_f(a['epoch1_test_rmse_per_user'])} "
                f"| {_f(a['seconds_to_best'], '.1f')} ({a['best_epoch']}) | {a['fit_seconds']:.1f} | {t['rmse']:.4f} "
                f"| {t['rmse_per_user']:.4f} |")
        lines += ["", "Ratios (same run):", ""]
        for fmt in ("sparse", "dense"):
            rows = [a for a in q["aerec"] if a["path"] == fmt and a["reached"]]
            if c["reached"] and rows:
                r = [c["reached"]["seconds"] / a["reached"]["seconds"] for a in rows]
                lines.append(f"- time to test rmse_per_user <= {TARGET}, course loop / aerec default on the {fmt} path: "
                             + ", ".join(f"**{x:.0f}x**" for x in r) + f" (seeds {', '.join(str(a['seed']) for a in rows)})")
        sp_ = [a for a in q["aerec"] if a["path"] == "sparse"]
        dn_ = [a for a in q["aerec"] if a["path"] == "dense"]
        if sp_ and dn_:
            mean = lambda xs: statistics.mean(xs)  # noqa: E731
            lines.append(f"- sparse / dense path, same seeds: epoch 1 {mean([a['first_epoch_seconds'] for a in dn_]):.2f} s -> "
                         f"{mean([a['first_epoch_seconds'] for a in sp_]):.2f} s; fit {mean([a['fit_seconds'] for a in dn_]):.1f} s -> "
                         f"{mean([a['fit_seconds'] for a in sp_]):.1f} s; test RMSE {mean([a['test']['rmse'] for a in dn_]):.4f} -> "
                         f"{mean([a['test']['rmse'] for a in sp_]):.4f} (means over the seeds)")
        lines.append("")
    cr = res.get("crossover")
    if cr:
        lines += ["**Dense or sparse path: one training step** (forward and backward of an autoencoder with "
                  "`baseline`, sigmoid, identity output; random cells; 1 thread):", "",
                  "| batch rows x columns, hidden | stands for | density | observed cells | dense ms | sparse ms | dense / sparse |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in cr:
            lines.append(f"| {r['rows']:,} x {r['cols']:,}, {r['hidden']} | {r['what']} | {r['density']:.3f} | {r['nnz']:,} "
                         f"| {r['dense_ms']:.1f} | {r['sparse_ms']:.1f} | {r['dense_ms'] / r['sparse_ms']:.2f} |")
        lines.append("")
    th = res.get("throughput")
    if th:
        lines += [f"**Throughput per epoch** (ML-100K u1.base: 80,000 ratings; the implicit families read its "
                  f"ratings >= 4; each family's default settings; 1 thread; median of epochs 2-{th[0]['epochs']}; "
                  "GFLOP/s over all epochs, dense path only):", "",
                  "| family | rows | optimizer, batch | path | s / epoch | row passes / epoch | ratings / s | GFLOP/s "
                  "| % of 1-thread peak |",
                  "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in th:
            batch = "all rows" if r["batch_size"] == 0 else f"{r['batch_size']}"
            path = f"{r['path']} (auto's choice)" if r.get("asked") == "auto" else r["path"]
            lines.append(f"| {r['kind']} | {r['orientation']}s ({r['n_rows']:,}) | {r['optimizer']}, {batch} | {path} "
                         f"| {r['epoch_seconds']:.3f} | {r['rows_per_epoch'] / r['n_rows']:.1f} "
                         f"| {r['ratings_per_second']:,.0f} | {_f(r['gflops'], '.1f')} | {_f(r['percent_of_peak'], '.0f')} |")
        lines.append("")
    cc = res.get("compile")
    if cc:
        text = f"**torch.compile** (dae network, dense minibatches of 64 item rows, Adam): eager {cc['eager_epoch_seconds']:.2f} s an epoch"
        if "compiled_epoch_seconds" in cc:
            text += (f"; compiled: first epoch {cc['compiled_first_epoch_seconds']:.1f} s (compilation included), then "
                     f"{cc['compiled_epoch_seconds']:.2f} s an epoch.")
        elif "compile_error" in cc:
            text += f"; compiling failed: {cc['compile_error']}."
        lines += [text, ""]
    return "\n".join(lines).rstrip() + "\n"


# ====================================================================== main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-home", default=None, help="folder holding ml-100k/ (default: $AEREC_DATA_HOME)")
    p.add_argument("--parts", default=",".join(ALL_PARTS), help=f"comma list of {', '.join(ALL_PARTS)}")
    p.add_argument("--families", default=",".join(FAMILIES), help="comma list of families for the throughput part")
    p.add_argument("--seeds", default="0,1,2", help="seeds of aerec's default in the quality part")
    p.add_argument("--quick", action="store_true", help="a smoke run (fewer epochs and shapes); never written to the doc")
    p.add_argument("--json", default=None, help="also write every figure to this file")
    p.add_argument("--from-json", default=None, help="re-render the doc block from a --json file (no measuring)")
    p.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    a = p.parse_args(argv)
    if a.from_json:
        res = json.loads(Path(a.from_json).read_text(encoding="utf-8"))
        block = markdown(res)
        print(block)
        if not res["quick"] and not a.no_doc:
            _doc.write_block("performance.py", block)
        return 0
    parts = [x.strip() for x in a.parts.split(",") if x.strip()]
    unknown = set(parts) - set(ALL_PARTS)
    if unknown:
        p.error(f"unknown part(s) {sorted(unknown)}")
    folder = course_loop._ml100k(a.data_home)
    if folder is None and set(parts) & {"quality", "throughput", "compile"}:
        print("MovieLens 100K not found: set AEREC_DATA_HOME (or --data-home) to a folder holding ml-100k/", file=sys.stderr)
        return 2
    shown = "python benchmarks/performance.py" + (" --quick" if a.quick else "") + \
        (f" --parts {a.parts}" if a.parts != p.get_default("parts") else "") + \
        (f" --families {a.families}" if a.families != p.get_default("families") else "") + \
        (f" --seeds {a.seeds}" if a.seeds != p.get_default("seeds") else "")
    res: dict[str, Any] = {"date": _doc.now(), "machine": _doc.machine(), "quick": a.quick, "load_before": _doc.load_text(),
                           "command": f"AEREC_DATA_HOME=... {shown}"}
    torch.set_num_threads(1)
    explicit_u1.warm_up()
    started = time.perf_counter()
    if "peak" in parts:
        res["peak"] = [matmul_peak(1), matmul_peak(2)]
        log(f"peak: {[round(x['gflops'], 1) for x in res['peak']]} GFLOP/s (1, 2 threads)")
    if "crossover" in parts:
        res["crossover"] = crossover(a.quick)
    if "quality" in parts:
        res["quality"] = quality(folder, [int(s) for s in a.seeds.split(",")], a.quick)
    if "throughput" in parts:
        peak1 = next((x["gflops"] for x in res.get("peak", []) if x["threads"] == 1), None)
        res["throughput"] = throughput(folder, [f.strip() for f in a.families.split(",") if f.strip()],
                                       2 if a.quick else 3, peak1)
    if "compile" in parts:
        res["compile"] = compile_check(folder, a.quick)
    res["load_after"] = _doc.load_text()
    res["seconds"] = time.perf_counter() - started
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=float), encoding="utf-8")
    block = markdown(res)
    print(block)
    if not a.quick and not a.no_doc:
        _doc.write_block("performance.py", block)
    log(f"done in {res['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
