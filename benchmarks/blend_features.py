"""Would a feature-weighted blend beat the accurate preset's linear one? Validation only.

Fits an ensemble of ``--members`` (default: the three networks the ``accurate`` preset had until
2026-12-07, ``i-autorec,u-autorec,i-kernel``) on ML-100K ``u1.base`` as ``aerec train --preset
accurate`` would, and keeps the members' predictions of its own validation carve (the ratings
the members' selection runs never trained on, where the blend is fitted). On those
ratings, repeated 2-fold cross-validation (10 repeats, seed 0) compares:

- ``nnls``: the preset's blend (non-negative weights and an intercept, ``aerec.ensemble.fit_blend``);
- ``linear``: unconstrained least squares with an intercept;
- ``fwls``: feature-weighted linear stacking (Sill et al. 2009): each member's weight, and the
  intercept, linear in the rater's and the item's log training-rating counts, fitted by ridge
  regression (penalty 1 and 30).

``--candidates KIND[:key=value...] ...`` also trains each candidate network on the same fit part,
early-stopped on the same carve, and reports its validation RMSE alone and the 2-fold CV RMSE of
the non-negative blend of the members with it (and, for several, with all of them), e.g.
``dae:input_dropout=0.5:baseline=True`` (``train.KEY=VALUE`` sets a training setting), with
the blend's RMSE when it takes each member's place; ``surprise:model=KNNBaseline:user_based=False``
(or ``model=SVDpp``) tries a peer's model the same way (``scikit-surprise``, the bench extra).

``--base u2.base`` (... ``u5.base``) does the same on another fold's training file, so that a
choice can be checked on more than one carve. No test file is ever read. One run, about two
minutes on two threads, and seconds to a minute per candidate:

    AEREC_DATA_HOME=../shared/data python benchmarks/blend_features.py [--candidates SPEC ...]
"""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path

import numpy as np


def member_predictions(members: list[str], base: str = "u1.base") -> dict[str, np.ndarray]:
    """The members' predictions of the ensemble's validation carve, with the counts."""
    from aerec.config import Config
    from aerec.data import read_ratings
    from aerec.ensemble import EnsembleRecommender, _cells

    captured: dict[str, np.ndarray] = {}
    real, real_select = EnsembleRecommender._fit_blend, EnsembleRecommender._select

    def select(self, member, name, k, fit_matrix, val_matrix, *args, **kwargs):
        captured.update(fit_matrix=fit_matrix, val_matrix=val_matrix)  # the parts each member sees
        return real_select(self, member, name, k, fit_matrix, val_matrix, *args, **kwargs)

    def keep(self, selected, val_matrix):
        users, items, truth = _cells(val_matrix.csr)
        csr = selected[0].train_csr_  # the fit part: what the members trained on
        captured.update(
            cells=(users, items), truth=truth.astype(np.float64),
            parts=np.column_stack([self._to_data(m.predict_indices(users, items).values) for m in selected]),
            users=np.diff(csr.indptr)[users], items=np.bincount(csr.indices, minlength=csr.shape[1])[items])
        return real(self, selected, val_matrix)

    EnsembleRecommender._fit_blend, EnsembleRecommender._select = keep, select
    home = Path(os.environ.get("AEREC_DATA_HOME", "")) / "ml-100k"
    EnsembleRecommender(config=Config(model={"kind": "autorec", "members": members})).fit(read_ratings(home / base))
    EnsembleRecommender._fit_blend, EnsembleRecommender._select = real, real_select
    return captured


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """RMSE of predictions clipped to ML-100K's 1..5 scale."""
    return float(np.sqrt(np.mean((np.clip(pred, 1, 5) - truth) ** 2)))


def two_fold(n: int, score, repeats: int = 10) -> float:
    """Mean of ``score(fit_on, score_on)`` over 2-fold splits of ``n`` ratings, ``repeats`` times
    (seed 0: every method is scored on the same splits)."""
    rng, scores = np.random.default_rng(0), []
    for _ in range(repeats):
        order = rng.permutation(n)
        halves = (order[: n // 2], order[n // 2:])
        scores += [score(fit_on, score_on) for fit_on, score_on in (halves, halves[::-1])]
    return float(np.mean(scores))


def blend_cv(parts: np.ndarray, truth: np.ndarray) -> float:
    """2-fold CV RMSE of the preset's non-negative blend of ``parts``."""
    from aerec.ensemble import fit_blend

    def score(fit_on, score_on):
        blend = fit_blend(parts[fit_on], truth[fit_on])
        return rmse(blend([parts[score_on, j] for j in range(parts.shape[1])]), truth[score_on])

    return two_fold(len(truth), score)


def candidate(spec: str, d: dict) -> np.ndarray:
    """The candidate ``KIND[:key=value...]`` trained as a member is, its predictions of the carve."""
    from aerec.config import Config
    from aerec.recommender import Recommender

    kind, *settings = spec.split(":")
    model, train = {"kind": kind}, {}
    for key, value in (o.split("=", 1) for o in settings):  # train.KEY=VALUE: a training setting
        (train if key.startswith("train.") else model)[key.removeprefix("train.")] = (
            value if value.isidentifier() and value not in ("True", "False", "None") else ast.literal_eval(value))
    if kind == "surprise":  # a peer's model on the same fit part: surprise:KNNBaseline[:k=40...]
        return surprise_candidate(model, d)
    net = Recommender(config=Config.from_dict({"model": model, "train": train}, source="blend_features.py"))
    net.fit(d["fit_matrix"], d["val_matrix"])
    return net.predict_indices(*d["cells"]).values


def surprise_candidate(model: dict, d: dict) -> np.ndarray:
    """Surprise's ``model["model"]`` (``surprise:model=KNNBaseline[:user_based=False]`` ...; the
    kNN models read ``user_based``) fitted on the fit part, its predictions of the carve."""
    import pandas as pd
    import surprise

    settings = {k: v for k, v in model.items() if k not in ("kind", "model", "user_based")}
    if "user_based" in model:
        settings["sim_options"] = {"name": "pearson_baseline", "user_based": model["user_based"]}
    algo = getattr(surprise, model.get("model", "KNNBaseline"))(**settings, **(
        {"verbose": False} if "sim_options" in settings else {"random_state": 0}))
    coo = d["fit_matrix"].csr.tocoo()
    frame = pd.DataFrame({"u": coo.row, "i": coo.col, "r": coo.data})
    algo.fit(surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(1, 5))).build_full_trainset())
    return np.array([algo.predict(u, i).est for u, i in zip(*d["cells"])])


def compare(d: dict[str, np.ndarray]) -> dict[str, float]:
    parts, truth = d["parts"], d["truth"]
    log_u, log_i = np.log1p(d["users"]), np.log1p(d["items"])

    def linear(fit_on, score_on):
        x = np.column_stack([np.ones(len(fit_on)), parts[fit_on]])
        w = np.linalg.lstsq(x, truth[fit_on], rcond=None)[0]
        return rmse(np.column_stack([np.ones(len(score_on)), parts[score_on]]) @ w, truth[score_on])

    def stacked(idx, centre):  # (n, 3 + 3k): the meta-features, and each member times each
        meta = np.column_stack([np.ones(len(idx)), log_u[idx] - centre[0], log_i[idx] - centre[1]])
        return np.column_stack([meta] + [parts[idx][:, [k]] * meta for k in range(parts.shape[1])])

    def fwls(penalty):
        def score(fit_on, score_on):
            centre = (log_u[fit_on].mean(), log_i[fit_on].mean())
            x, x_score = stacked(fit_on, centre), stacked(score_on, centre)
            w = np.linalg.solve(x.T @ x + penalty * np.eye(x.shape[1]), x.T @ truth[fit_on])
            return rmse(x_score @ w, truth[score_on])
        return score

    n = len(truth)
    return {"nnls": blend_cv(parts, truth), "linear": two_fold(n, linear),
            "fwls ridge 1": two_fold(n, fwls(1)), "fwls ridge 30": two_fold(n, fwls(30))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", default="i-autorec,u-autorec,i-kernel")
    p.add_argument("--candidates", nargs="*", default=[])
    p.add_argument("--base", default="u1.base", help="the fold's training file (u1.base ... u5.base); its test file is never read")
    a = p.parse_args()
    d = member_predictions(a.members.split(","), a.base)
    print(f"{len(d['truth']):,} validation ratings; members alone:",
          ", ".join(f"{rmse(d['parts'][:, k], d['truth']):.4f}" for k in range(d["parts"].shape[1])))
    for name, value in compare(d).items():
        print(f"{name}: 2-fold CV RMSE {value:.4f}")
    extra = []
    for spec in a.candidates:
        pred = candidate(spec, d)
        extra.append(pred)
        parts, names = d["parts"], a.members.split(",")
        instead = ", ".join(f"{name} {blend_cv(np.column_stack([np.delete(parts, k, axis=1), pred]), d['truth']):.4f}"
                            for k, name in enumerate(names))
        print(f"{spec}: alone {rmse(pred, d['truth']):.4f}; the members with it {blend_cv(np.column_stack([parts, pred]), d['truth']):.4f} "
              f"(without: {blend_cv(parts, d['truth']):.4f}); in place of {instead}")
    if len(extra) > 1:
        print(f"all candidates with the members: {blend_cv(np.column_stack([d['parts'], *extra]), d['truth']):.4f}")


if __name__ == "__main__":
    main()
