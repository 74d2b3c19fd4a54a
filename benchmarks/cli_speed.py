"""The speed of the commands a user runs, timed as whole processes, side by side with Surprise.

Every figure is a median of repeated runs; the runs of the commands that are compared are
interleaved (A, B, A, B, ...) so that a busy spell of the machine hits both. Timed with
``subprocess`` and ``time.perf_counter`` from the moment the process is started until it exits
(Python start-up, imports, reading the file, training, saving: what a user waits for).

1. ``aerec train --train u1.base --out DIR --no-progress`` against ``benchmarks/surprise_svdpp.py``
   (read u1.base, fit SVD++ with its defaults), and the test RMSE of the saved model on u1.test
   (``aerec evaluate``, not timed);
2. ``aerec --help`` and ``aerec COMMAND --help``;
3. checkpoints: the default model fitted on u1.base in one process (fit only), the time spent
   writing checkpoints under the default budget (``train.checkpoint_budget = 0.05``) as plain
   ``aerec train`` writes them (the budget alone decides) and as a run given ``--checkpoint-dir``
   does (also the last epoch's if none came before), and with a checkpoint after every epoch
   (``checkpoint_budget = 1``, the behaviour before);
4. an epoch of the default model against the machine's dense matmul rate (torch GEMM GFLOP/s
   measured in the same process, at the fit's thread count), with the FLOPs the epoch must do,
   the rate of the sparse products it is made of (CSR x dense, both ways) and the memory rate
   that bounds L-BFGS's own vector work;
5. ``aerec train --implicit --model ease`` on a synthetic file of over 10,000 items (whole
   process), and EASE's test NDCG@100 on ML-100K u1 in float32 against float64 (fit only);
6. ``aerec demo --no-progress``.

Writes a markdown table into the section "## Command speed: whole processes" of
docs/benchmarks.md (not with ``--no-doc``).

    AEREC_DATA_HOME=/path/to/data python benchmarks/cli_speed.py [--repeats 3] [--no-doc]

Needs MovieLens 100K under ``$AEREC_DATA_HOME/ml-100k`` and ``scikit-surprise`` (the ``bench``
extra).
"""

from __future__ import annotations

import os
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _doc  # noqa: E402

log = _doc.log
HERE = Path(__file__).resolve().parent
SECTION = "## Command speed: whole processes"
INTRO = """What a user waits for: each command timed from process start to exit with
`benchmarks/cli_speed.py` (subprocess + `time.perf_counter`, medians of interleaved runs), next
to a plain Surprise script (`benchmarks/surprise_svdpp.py`: read u1.base, fit SVD++ with its
defaults). Rows marked "fit only" are timed inside one process, with the thread count and
OpenMP wait policy the `aerec` command would choose. The machine has 2 cores, at times shared
with other jobs; the load averages are recorded with the figures. About 6 minutes:
`AEREC_DATA_HOME=../shared/data MPLBACKEND=Agg python benchmarks/cli_speed.py`."""


def _aerec() -> list[str]:
    return [sys.executable, "-m", "aerec"]


def whole_processes(commands: dict[str, list[str]], repeats: int, env: dict[str, str]) -> dict[str, list[float]]:
    """Wall seconds of each command, run ``repeats`` times, interleaved."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for r in range(repeats):
        for name, argv in commands.items():
            t0 = time.perf_counter()
            done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            times[name].append(time.perf_counter() - t0)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed ({done.returncode}):\n{done.stderr[-2000:]}")
            log(f"run {r + 1}/{repeats} {name}: {times[name][-1]:.2f} s")
    return times


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# ----------------------------------------------------------------------------- fit-only probes
PROBE = r'''
import json, sys, time, tempfile
from aerec.cli import choose_wait_policy
choose_wait_policy()  # as the aerec command does, before torch loads
import torch
import aerec.training as training
from aerec import Recommender, read_ratings
from aerec.config import Config

spent = []
save = training.Trainer._save_checkpoint
def timed(self, *a, **k):
    t0 = time.perf_counter(); save(self, *a, **k); spent.append(time.perf_counter() - t0)
training.Trainer._save_checkpoint = timed
evals = []
step = torch.optim.LBFGS.step
def counted(self, closure):
    def c():
        evals.append(1)
        return closure()
    return step(self, c)
torch.optim.LBFGS.step = counted

train = read_ratings(sys.argv[1])
out = {}
# "plain": what `aerec train` without --checkpoint-dir does (the budget alone decides); "budget":
# a run given a checkpoint folder, which also gets the last epoch's if the budget wrote none.
for name, budget, final in (("none", None, True), ("plain", 0.05, False), ("budget", 0.05, True), ("every", 1.0, True)):
    spent.clear(); evals.clear()
    cfg = {"model": {"kind": "autorec"}, "train": {} if budget is None else {"checkpoint_budget": budget}}
    rec = Recommender(config=Config.from_dict(cfg, source="bench"))
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        rec.fit(train, checkpoint_dir=None if budget is None else d, final_checkpoint=final)
        fit = time.perf_counter() - t0
    hist = rec.train_result_.history
    out[name] = {"fit": fit, "checkpoints": len(spent), "checkpoint_s": sum(spent), "evals": len(evals),
                 "epochs": len(hist) + (rec.refit_epochs_ or 0), "epoch_s": [h.seconds for h in hist]}
# The FLOPs one evaluation of the objective must do on the sparse path (the one the default
# model takes on ML-100K): encoder gather-sum, decoder at observed cells, and their gradients
# (weights of both layers, the hidden units): 5 products of nnz x hidden multiply-adds.
m = rec.net_
hidden = m.encoder[0].out_features
out["nnz_fit"] = int(train.__len__() * 0.95)
out["hidden"] = hidden
out["params"] = sum(p.numel() for p in m.parameters())
out["threads"] = torch.get_num_threads()
n = 2048
a, b = torch.randn(n, n), torch.randn(n, n)
a @ b
t0 = time.perf_counter()
for _ in range(5):
    a @ b
out["gemm_gflops"] = 5 * 2 * n**3 / (time.perf_counter() - t0) / 1e9
# The rate of the products the epoch is made of: a CSR of the training ratings' pattern (items x
# users, as I-AutoRec reads it) times a dense users x hidden matrix (the encoder, the decoder's
# input gradient), and the transpose's product (the weight gradients), which the fit reads through
# the pattern's column order, made once, as a CSR of the transpose.
from aerec.data.matrix import RatingMatrix
csr = RatingMatrix.from_ratings(train).csr.T.tocsr()
g = torch.sparse_csr_tensor(torch.from_numpy(csr.indptr).long(), torch.from_numpy(csr.indices).long(),
                            torch.randn(csr.nnz), size=csr.shape)
dense = torch.randn(csr.shape[1], hidden)
dense_t = torch.randn(csr.shape[0], hidden)
torch.sparse.mm(g, dense)
t0 = time.perf_counter()
for _ in range(10):
    torch.sparse.mm(g, dense)
out["spmm_gflops"] = 10 * 2 * csr.nnz * hidden / (time.perf_counter() - t0) / 1e9
csr_t = csr.T.tocsr()
g_t = torch.sparse_csr_tensor(torch.from_numpy(csr_t.indptr).long(), torch.from_numpy(csr_t.indices).long(),
                              torch.randn(csr_t.nnz), size=csr_t.shape)
torch.sparse.mm(g_t, dense_t)
t0 = time.perf_counter()
for _ in range(10):
    torch.sparse.mm(g_t, dense_t)
out["spmm_t_gflops"] = 10 * 2 * csr.nnz * hidden / (time.perf_counter() - t0) / 1e9
out["shape"] = list(csr.shape)
v, w = torch.randn(out["params"]), torch.randn(out["params"])
t0 = time.perf_counter()
for _ in range(50):
    v.add_(w, alpha=0.5)
out["axpy_gbs"] = 50 * 3 * 4 * out["params"] / (time.perf_counter() - t0) / 1e9
print(json.dumps(out))
'''

EASE_PROBE = r'''
import json, sys, time
from aerec.cli import choose_wait_policy
choose_wait_policy()  # as the aerec command does, before torch loads
import torch
import aerec.models.ease as ease
from aerec import ImplicitRecommender, read_ratings
train, test = read_ratings(sys.argv[1]), read_ratings(sys.argv[2])
out = {}
for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
    ease.EASE_DTYPE = dtype
    t0 = time.perf_counter()
    model = ImplicitRecommender("ease").fit(train)
    fit = time.perf_counter() - t0
    metrics = model.evaluate(test)
    out[name] = {"fit": fit, "l2": model.params_.l2, "ndcg@100": metrics["ndcg@100"], "recall@20": metrics["recall@20"]}
print(json.dumps(out))
'''


def probe(code: str, *args: str, env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"probe failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ease_file(path: Path) -> tuple[int, int]:
    """400,000 synthetic ratings of 1,500 users on 12,000 items (over 10,000 of them rated): a
    ratings file shaped like MovieLens' "latest-small" (610 users x 9,742 items), but larger."""
    from aerec.data.synthetic import synthetic_ratings

    r = synthetic_ratings(n_ratings=400_000, n_users=1_500, n_items=12_000, seed=0, taste=1.0)
    r.frame.to_csv(path, index=False, columns=["user", "item", "rating"])
    return int(r.frame["user"].nunique()), int(r.frame["item"].nunique())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timed command (default 3)")
    parser.add_argument("--help-repeats", type=int, default=7)
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    args = parser.parse_args()

    home = Path(os.environ.get("AEREC_DATA_HOME", "")) / "ml-100k"
    base, test = home / "u1.base", home / "u1.test"
    if not base.is_file():
        raise SystemExit(f"{base} not found: set AEREC_DATA_HOME to the folder that holds ml-100k/")
    # Each command chooses its own OpenMP wait policy, as it would for a user (unless the user set one).
    env = {**{k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}, "PYTHONHASHSEED": "0"}
    if _doc.USER_WAIT_POLICY is not None:
        env["OMP_WAIT_POLICY"] = _doc.USER_WAIT_POLICY
    res: dict = {"date": _doc.now(), "machine": _doc.machine(), "load_before": _doc.load_text()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # 2. help
        helps = {" ".join(["aerec", *a]): [*_aerec(), *a] for a in
                 (["--help"], ["train", "--help"], ["evaluate", "--help"], ["recommend", "--help"], ["demo", "--help"],
                  ["tune", "--help"], ["serve", "--help"], ["datasets", "list", "--help"])}
        res["help"] = whole_processes(helps, args.help_repeats, env)
        # 1. train against Surprise SVD++
        model = tmp / "model"
        pair = {
            "aerec train": [*_aerec(), "train", "--train", str(base), "--out", str(model), "--no-progress"],
            "Surprise SVD++ script": [sys.executable, str(HERE / "surprise_svdpp.py"), str(base)],
        }
        res["train"] = whole_processes(pair, args.repeats, env)
        res["load_train"] = _doc.load_text()
        done = subprocess.run([*_aerec(), "evaluate", str(model), "--test", str(test), "--json"],
                              capture_output=True, text=True, env=env, check=True)
        res["train_rmse"] = json.loads(done.stdout)["rmse"]
        # 6. demo
        res["demo"] = whole_processes({"aerec demo": [*_aerec(), "demo", "--no-progress"]}, args.repeats, env)
        # 5. EASE on over 10,000 items
        path = tmp / "ease.csv"
        res["ease_shape"] = ease_file(path)
        ease = {"aerec train --model ease": [*_aerec(), "train", "--implicit", "--model", "ease", "--train", str(path),
                                             "--out", str(tmp / "ease"), "--no-progress", "--json"]}
        res["ease"] = whole_processes(ease, max(2, args.repeats - 1), env)
        log("EASE float32 against float64 on ML-100K u1 (fit only)")
        res["ease_precision"] = probe(EASE_PROBE, str(base), str(test), env=env)
        # 3 + 4. checkpoints, epochs, GEMM
        log("the default model's fit without checkpoints, with the default budget, with one every epoch")
        res["fit"] = probe(PROBE, str(base), env=env)
    res["load_after"] = _doc.load_text()
    block = render(res)
    print(block)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    if not args.no_doc:
        _doc.write_block("cli_speed.py", block, section=SECTION, intro=INTRO)


def render(res: dict) -> str:
    t = res["train"]
    aerec_s, svdpp_s = med(t["aerec train"]), med(t["Surprise SVD++ script"])
    fit = res["fit"]
    none, budget, every = fit["none"], fit["budget"], fit["every"]
    plain = fit.get("plain")
    # 4. The epoch against the GEMM rate: FLOPs one objective evaluation must do on the sparse
    # path, 5 products of nnz x hidden multiply-adds (2 FLOPs each).
    epoch_s = med(none["epoch_s"])
    evals_per_epoch = none["evals"] / max(none["epochs"], 1)
    flops = evals_per_epoch * 5 * 2 * fit["nnz_fit"] * fit["hidden"]
    bound = flops / (fit["gemm_gflops"] * 1e9)
    # The same evaluations on the dense matrix (what the dense batch path computes): 5 products
    # of rows x columns x hidden multiply-adds each.
    dense_flops = evals_per_epoch * 5 * 2 * fit["shape"][0] * fit["shape"][1] * fit["hidden"]
    # What L-BFGS itself moves per iteration: two loops over 20 stored pairs, each reading a pair
    # vector twice (dot, then axpy) and q: about 2 x 20 x (2 + 3) vectors of 4-byte floats.
    lbfgs_bytes = 2 * 20 * 5 * 4 * fit["params"]
    its = 5  # train.lbfgs_iterations of the default model
    lbfgs_s = its * lbfgs_bytes / (fit["axpy_gbs"] * 1e9)
    helps = res["help"]
    e = res["ease_precision"]
    users, items = res["ease_shape"]
    lines = [
        f"Measured {res['date']} on {res['machine']}; load averages {res['load_before']} before, "
        f"{res['load_train']} after the train runs, {res['load_after']} at the end. Medians of "
        f"{len(t['aerec train'])} interleaved runs (help: {len(next(iter(helps.values())))}).",
        "",
        "| what | timed | median | target | note |",
        "|---|---|---:|---:|---|",
        f"| `aerec train --train u1.base --out DIR --no-progress` | whole process | {aerec_s:.1f} s | "
        f"<= 0.5 x SVD++ | {aerec_s / svdpp_s:.2f} x the SVD++ script; test RMSE {res['train_rmse']:.4f} on u1.test |",
        f"| `python benchmarks/surprise_svdpp.py u1.base` (SVD++ defaults) | whole process | {svdpp_s:.1f} s | | |",
    ]
    for name, xs in helps.items():
        lines.append(f"| `{name}` | whole process | {med(xs):.2f} s | <= 0.3 s | |")
    lines += [
        f"| default model on u1.base, no checkpoints | fit only | {none['fit']:.1f} s | | "
        f"{none['epochs']} L-BFGS epochs (selection + refit), {fit['threads']} thread(s) |",
        *([f"| ... as `aerec train` without `--checkpoint-dir` (the budget alone decides) | fit only | "
           f"{plain['fit']:.1f} s | <= 5 % | {plain['checkpoints']} checkpoints, {plain['checkpoint_s']:.2f} s = "
           f"{100 * plain['checkpoint_s'] / plain['fit']:.1f} % of the fit |"] if plain else []),
        f"| ... with `--checkpoint-dir` (budget 0.05, and the last epoch's if none came before) | fit only | "
        f"{budget['fit']:.1f} s | <= 5 % | {budget['checkpoints']} checkpoints, {budget['checkpoint_s']:.2f} s = "
        f"{100 * budget['checkpoint_s'] / budget['fit']:.1f} % of the fit |",
        f"| ... a checkpoint every epoch (`checkpoint_budget = 1`, as before) | fit only | {every['fit']:.1f} s | | "
        f"{every['checkpoints']} checkpoints, {every['checkpoint_s']:.2f} s = "
        f"{100 * every['checkpoint_s'] / every['fit']:.1f} % of the fit |",
        f"| one epoch of the default model (selection run) | fit only | {epoch_s:.3f} s | <= 2 x GEMM bound | "
        f"{evals_per_epoch:.1f} objective evaluations x {5 * 2 * fit['nnz_fit'] * fit['hidden'] / 1e9:.2f} GFLOP = "
        f"{flops / 1e9:.2f} GFLOP; at the GEMM rate of {fit['gemm_gflops']:.0f} GFLOP/s: {bound * 1e3:.0f} ms, "
        f"so {epoch_s / bound:.0f} x the bound. L-BFGS's own vector work, {its} x {lbfgs_bytes / 1e6:.0f} MB at "
        f"{fit['axpy_gbs']:.0f} GB/s, is about {lbfgs_s * 1e3:.0f} ms of it. The products are sparse: "
        f"CSR x dense runs at {fit['spmm_gflops']:.1f} GFLOP/s here ({fit['spmm_t_gflops']:.1f} GFLOP/s for the transpose's), "
        f"where the epoch's {flops / 1e9:.2f} GFLOP take {flops / (max(fit['spmm_gflops'], fit['spmm_t_gflops']) * 1e9) * 1e3:.0f} "
        f"to {flops / (min(fit['spmm_gflops'], fit['spmm_t_gflops']) * 1e9) * 1e3:.0f} ms; the dense products of "
        f"the whole {fit['shape'][0]:,} x {fit['shape'][1]:,} matrix would be {dense_flops / 1e9:.0f} GFLOP, "
        f"{dense_flops / (fit['gemm_gflops'] * 1e9) * 1e3:.0f} ms at the GEMM rate |",
        f"| `aerec train --implicit --model ease`, {items:,} items x {users:,} users | whole process | "
        f"{med(res['ease']['aerec train --model ease']):.1f} s | <= 30 s | one users x users eigendecomposition for "
        f"the 8 lambdas, float32 |",
        f"| EASE on ML-100K u1, float32 | fit only | {e['float32']['fit']:.2f} s | | test NDCG@100 "
        f"{e['float32']['ndcg@100']:.4f}, recall@20 {e['float32']['recall@20']:.4f} (lambda {e['float32']['l2']:g}) |",
        f"| EASE on ML-100K u1, float64 | fit only | {e['float64']['fit']:.2f} s | | test NDCG@100 "
        f"{e['float64']['ndcg@100']:.4f}, recall@20 {e['float64']['recall@20']:.4f} (lambda {e['float64']['l2']:g}); "
        f"float32 - float64 NDCG@100: {e['float32']['ndcg@100'] - e['float64']['ndcg@100']:+.5f} |",
        f"| `aerec demo --no-progress` | whole process | {med(res['demo']['aerec demo']):.1f} s | <= 8 s | |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
