"""How much does choosing on the validation users flatter the validation figure?

Early stopping reports the best epoch's validation NDCG@100: the maximum of a noisy curve over
100 users, which reads high. EASE chooses among 8 lambdas, the networks among 50 to 130 epochs,
so the networks' figures read higher. This script measures that on validation users only (the
test users are never scored): for every epoch (or lambda) it keeps each validation user's
NDCG@100; then, over 50 random halvings of those users, it picks the epoch on one half and scores
it on the other (both ways). That *cross-fitted* figure is not inflated by the choice.

    AEREC_DATA_HOME=/path/to/data python benchmarks/implicit_selection.py [--seeds 0,1,2,3,4]
    AEREC_DATA_HOME=/path/to/data python benchmarks/implicit_selection.py --models multvae --ema 0.99

``--ema DECAY`` is a probe (it prints, and leaves the doc alone): validation reads an
exponential moving average of the weights, updated after every optimiser step, instead of the
weights themselves.

Same protocol and seeds as ``implicit_topn.py`` (ML-100K, ratings >= 4, 100 validation and 100
test users a seed); prints markdown and rewrites its block in docs/benchmarks.md.
"""

from __future__ import annotations

import os

# As the aerec command does: OpenMP threads sleep instead of spinning while they wait. libgomp
# reads this only when torch loads, so it is set before any import that may load torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from aerec.config import Config
from aerec.data.registry import load_dataset
from aerec.data.splits import user_split
from aerec.implicit import ImplicitRecommender
from aerec.ranking import hits_of, ndcg_at_k, top_k
from aerec.training import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _doc  # noqa: E402

import implicit_topn  # noqa: E402  (the section and its introduction)

BLOCK = "implicit_selection.py"
HALVINGS = 50


class _Recording(ImplicitRecommender):
    """An ImplicitRecommender that keeps every validation user's NDCG@100 at each evaluation.

    ``_evaluate_task`` is what fit calls once per epoch (or per EASE lambda); overriding it is
    a benchmark's liberty, not a public hook.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.curves: list[np.ndarray] = []  # per evaluation: (validation users,) NDCG@100

    def _evaluate_task(self, task, metrics, *, net=None, rankable=None):
        if net is not None and _SHADOW:
            return _with_weights(net, _SHADOW, lambda: self._record(task, metrics, net, rankable))
        return self._record(task, metrics, net, rankable)

    def _record(self, task, metrics, net, rankable):
        ok = self.rankable_ if rankable is None else rankable
        users = np.flatnonzero(np.diff(task.held_out.indptr) > 0)
        scores = self.score_rows(task.inputs[users], task.user_rows[users], net=net, rankable=ok)
        top = top_k(scores, task.inputs[users], 100)  # (users, 100)
        truth = task.held_out[users]
        per_user = ndcg_at_k(hits_of(top, truth), np.diff(truth.indptr), 100)
        self.curves.append(per_user)
        return {m: float(per_user.mean()) for m in metrics}


_SHADOW: dict[str, torch.Tensor] = {}  # --ema: the averaged weights, by parameter name


def _track_ema(decay: float) -> None:
    """Average the weights after every optimiser step (patches the trainer: a probe only)."""
    step = Trainer._step

    def averaged_step(trainer, net, optimizer):
        step(trainer, net, optimizer)
        with torch.no_grad():
            for name, p in net.named_parameters():
                if name in _SHADOW:
                    _SHADOW[name].mul_(decay).add_(p.detach(), alpha=1 - decay)
                else:
                    _SHADOW[name] = p.detach().clone()

    Trainer._step = averaged_step


def _with_weights(net, weights, work):
    """Run ``work()`` with ``weights`` loaded into ``net``, then put its own weights back."""
    own = {n: p.detach().clone() for n, p in net.named_parameters()}
    with torch.no_grad():
        for n, p in net.named_parameters():
            p.copy_(weights[n])
    try:
        return work()
    finally:
        with torch.no_grad():
            for n, p in net.named_parameters():
                p.copy_(own[n])


def cross_fitted(curves: np.ndarray, seed: int = 0) -> float:
    """Mean over random halvings of: pick the epoch on one half, score it on the other."""
    rng = np.random.default_rng(seed)
    n = curves.shape[1]
    out = []
    for _ in range(HALVINGS):
        order = rng.permutation(n)
        a, b = order[: n // 2], order[n // 2 :]
        out.append(curves[np.argmax(curves[:, a].mean(axis=1)), b].mean())
        out.append(curves[np.argmax(curves[:, b].mean(axis=1)), a].mean())
    return float(np.mean(out))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--models", default="multvae,multdae,ease")
    parser.add_argument("--ema", type=float, default=None, help="probe: validate an EMA of the weights")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    if args.ema is not None:
        _track_ema(args.ema)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    ratings = load_dataset("ml-100k")
    rows = {}
    for kind in args.models.split(","):
        for seed in seeds:
            _doc.log(f"{kind} seed {seed}")
            split = user_split(ratings, test_users=100, validation_users=100, seed=seed)
            _SHADOW.clear()
            model = _Recording(config=Config(model={"kind": kind}, run={"seed": seed, "device": "cpu"}))
            model.fit(split.train, split.validation)  # validation users only: test is never scored
            curves = np.stack(model.curves)  # (epochs or lambdas, validation users)
            rows.setdefault(kind, []).append((float(curves.mean(axis=1).max()), cross_fitted(curves), len(curves)))
    command = "AEREC_DATA_HOME=... python benchmarks/implicit_selection.py" + (
        " " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    lines = [
        f"Run {_doc.now()} on {_doc.machine()}.", "",
        f"Command: `{command}` (ML-100K, seeds {', '.join(map(str, seeds))}; validation users only).", "",
        "| model | choices | validation NDCG@100 at the best choice | cross-fitted | inflation |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, got in rows.items():
        best, fair, n = (statistics.mean(x[i] for x in got) for i in range(3))
        lines.append(f"| {kind} | {n:.0f} | {best:.4f} | {fair:.4f} | {best - fair:+.4f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not (args.no_doc or args.ema is not None):
        _doc.write_block(BLOCK, text, section=implicit_topn.SECTION, intro=implicit_topn.INTRO)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    _doc.log(f"done in {time.perf_counter() - started:.0f} s")
