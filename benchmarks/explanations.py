"""How faithful are the "because you liked" explanations? MovieLens 100K, u1.base.

Each model is trained on u1.base (its defaults, one thread). 200 users (seeded) with at least
15 positives (ratings of 4 or 5) each play a *new* user: they give 15 of their training
ratings (rating models: 15 random ratings, at least 6 of them liked; implicit models: 15 random
positives), and their top-10 list is explained with 3 items each (``explain_top=3``).

The deletion test, on the model's own scores: for each recommended item that has reasons, the
reasons are taken out of the user's input and the item's score is recomputed (rating models: the
fold-in's predicted rating, before the output link; EASE: ``x @ B``; Mult-VAE: the log-softmax);
the same is done with as many *random* other liked items of the input. Reported: how often the
score falls further without the reasons than without the random items, the mean fall of each,
and how often the item then leaves the user's top 10.

Known users (``recommend(user, explain=True)``) of rating models are explained by the fold-in
of all their training ratings, a surrogate of the network's own prediction; its fidelity is
reported as the per-user Pearson correlation of the surrogate's and the network's predicted
ratings over every rated item (the mean over the same users) and their mean absolute gap. For a
user-row network (U-AutoRec), whose input is the user's row, the deletion test is also run on
the network itself: a known user's reasons, or as many random liked items, are taken out of
their row and the network's prediction recomputed.
Cost: milliseconds to explain one known user's top-10 (3 reasons each), after loading.

Writes the table into docs/benchmarks.md ("## Explanations") unless ``--no-doc``.

    AEREC_DATA_HOME=/path/to/data python benchmarks/explanations.py [--users 200] [--no-doc]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the aerec command does, before torch loads

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _doc  # noqa: E402

from aerec import ImplicitRecommender, Recommender, read_ratings  # noqa: E402
from aerec.foldin import bucket_of  # noqa: E402
from aerec.implicit.recommender import MULTINOMIAL  # noqa: E402

SECTION = "## Explanations"
MODELS = {  # label -> (estimator, kind, params)
    "autorec (I-AutoRec: the default)": (Recommender, "autorec", {}),
    "autorec (U-AutoRec)": (Recommender, "autorec", {"preset": "u-autorec"}),
    "ease (the implicit default)": (ImplicitRecommender, "ease", {}),
    "multvae": (ImplicitRecommender, "multvae", {}),
}
GIVEN, TOP_N, TOP_WHY = 15, 10, 3


def explained_score(model, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The quantity the explanations split ``(n_items,)``: the fold-in's prediction before the
    output link, EASE's score, a multinomial network's log-softmax over every item."""
    if model.predicts_ratings:
        return model.read_.fold_in.link.inverse(model.new_user_scores(idx, values))
    if model.kind in MULTINOMIAL:
        x = torch.zeros(1, len(model.items_))
        x[0, torch.from_numpy(model._liked_given(idx, values))] = 1.0
        with torch.no_grad():
            return torch.log_softmax(model.net_.scores(x), 1)[0].double().numpy()
    return model.new_user_scores(idx, values)


def given_items(model, rows, rng) -> tuple[np.ndarray, np.ndarray] | None:
    """A new user's ``(item indices, ratings)`` drawn from one training user's ratings."""
    idx, values = rows
    liked = values >= 4
    if model.predicts_ratings:
        pick = rng.choice(len(idx), GIVEN, replace=False)
        return (idx[pick], values[pick]) if liked[pick].sum() >= 6 else None
    pick = rng.choice(np.flatnonzero(liked), GIVEN, replace=False)
    return idx[pick], values[pick]


def deletion_test(model, users: list, rng) -> dict:
    """Reasons against random liked items, taken out of the input (see the module's text)."""
    falls_why, falls_random, out_why, out_random, wins, exact, shares_shown = [], [], [], [], [], [], []
    for rows in users:
        given = given_items(model, rows, rng)
        if given is None:
            continue
        idx, values = given
        full = explained_score(model, idx, values)
        exclude = np.zeros(len(model.items_), dtype=bool)
        exclude[idx] = True
        top = model.rank_items(model.new_user_scores(idx, values), exclude, TOP_N)[0]
        if model.predicts_ratings:  # the shares add up to the fold-in's prediction
            shares = model.read_.fold_in.contributions(idx, values, top)
            prior = model.read_.fold_in.means[model.read_.fold_in.choice.prior[bucket_of(len(idx))]]
            exact.append(float(np.abs(shares.sum(1) + prior[top] - full[top]).max()))
        lists = model.because(top, given=(idx, values), top=TOP_WHY)
        liked = idx[values >= 4]
        for t, reasons in zip(top.tolist(), lists):
            why = model.items_.index([r["item"] for r in reasons]) if reasons else np.empty(0, dtype=np.int64)
            others = np.setdiff1d(liked, why)
            if len(why) == 0 or len(others) < len(why):
                continue
            for removed, falls, outs in ((why, falls_why, out_why),
                                         (rng.choice(others, len(why), replace=False), falls_random, out_random)):
                keep = ~np.isin(idx, removed)
                falls.append(float(full[t] - explained_score(model, idx[keep], values[keep])[t]))
                after = model.rank_items(model.new_user_scores(idx[keep], values[keep]), exclude, TOP_N)[0]
                outs.append(t not in after)
            wins.append(falls_why[-1] > falls_random[-1])
            shares_shown.append(sum(r["contribution"] for r in reasons))
    return {"items": len(wins), "wins": float(np.mean(wins)), "fall_why": float(np.mean(falls_why)),
            "shares_shown": float(np.mean(shares_shown)),
            "fall_random": float(np.mean(falls_random)), "out_why": float(np.mean(out_why)),
            "out_random": float(np.mean(out_random)), "max_gap": max(exact) if exact else None}


def surrogate_fidelity(model, user_index: list[int]) -> dict:
    """Rating models' known users: the fold-in of all their ratings against the network."""
    rated = np.flatnonzero(np.asarray(model.item_counts_) > 0)
    corr, gap = [], []
    for u in user_index:
        start, end = model.train_csr_.indptr[u], model.train_csr_.indptr[u + 1]
        idx, values = model.train_csr_.indices[start:end], model.train_csr_.data[start:end].astype(np.float64)
        shares = model.read_.fold_in.contributions(idx, values, rated, prior="model", alpha=1.0)
        surrogate = model.read_.fold_in.link(model.read_.fold_in.means["model"][rated] + shares.sum(1))
        network = model.known_user_scores(u)[rated]
        corr.append(float(np.corrcoef(surrogate, network)[0, 1]))
        gap.append(float(np.mean(np.abs(surrogate - network))))
    return {"pearson": float(np.mean(corr)), "pearson_p10": float(np.percentile(corr, 10)), "mae": float(np.mean(gap))}


def network_deletion(model, user_index: list[int], rng) -> dict:
    """User-row rating networks (U-AutoRec): a known user's reasons (the surrogate's) against as
    many random liked items, both taken out of the user's input row and the *network's* own
    prediction of the item recomputed (no fold-in involved)."""
    wins, falls_why, falls_random = [], [], []
    for u in user_index:
        start, end = model.train_csr_.indptr[u], model.train_csr_.indptr[u + 1]
        idx, values = model.train_csr_.indices[start:end], model.train_csr_.data[start:end]
        top = model.items_.index(model.recommend(model.users_.label([u])[0], n=TOP_N)["item"].to_numpy())
        for t, reasons in zip(top.tolist(), model.because(top, user_index=u, top=TOP_WHY)):
            why = model.items_.index([r["item"] for r in reasons]) if reasons else np.empty(0, dtype=np.int64)
            others = np.setdiff1d(idx[values >= 4], why)
            if len(why) == 0 or len(others) < len(why):
                continue
            full = network_prediction(model, idx, values, t)
            for removed, falls in ((why, falls_why), (rng.choice(others, len(why), replace=False), falls_random)):
                keep = ~np.isin(idx, removed)
                falls.append(full - network_prediction(model, idx[keep], values[keep], t))
            wins.append(falls_why[-1] > falls_random[-1])
    return {"items": len(wins), "wins": float(np.mean(wins)), "fall_why": float(np.mean(falls_why)),
            "fall_random": float(np.mean(falls_random))}


def network_prediction(model, idx: np.ndarray, values: np.ndarray, item: int) -> float:
    """A user-row network's predicted rating of ``item`` from the input row ``idx -> values``."""
    row = sp.csr_array((values.astype(np.float32), (np.zeros(len(idx), dtype=np.int64), idx)),
                       shape=(1, len(model.items_)))
    row.sort_indices()
    return float(model._cells_from_net(model.net_, row, np.zeros(1, dtype=np.int64), np.array([item]))[0])


def cost_ms(model, labels: list, explain: bool) -> float:
    started = time.perf_counter()
    for user in labels:
        model.recommend(user, n=TOP_N, explain=explain, explain_top=TOP_WHY)
    return 1000 * (time.perf_counter() - started) / len(labels)


def measure(label: str, estimator, kind: str, params: dict, train, n_users: int, seed: int) -> dict:
    _doc.log(f"fitting {label} on {len(train):,} ratings")
    started = time.perf_counter()
    model = estimator(kind, **params).fit(train)
    row: dict = {"fit_s": time.perf_counter() - started}
    csr = train_rows(model, train)
    rng = np.random.default_rng(seed)
    eligible = [u for u, (_, v) in csr.items() if (v >= 4).sum() >= GIVEN and u in model.users_]
    picked = sorted(rng.choice(len(eligible), min(n_users, len(eligible)), replace=False).tolist())
    users = [eligible[k] for k in picked]
    row["deletion"] = deletion_test(model, [csr[u] for u in users], np.random.default_rng(seed))
    index = model.users_.index(np.array(users, dtype=object))
    if model.predicts_ratings:
        row["surrogate"] = surrogate_fidelity(model, index.tolist())
    if getattr(model, "orientation_", None) == "user":
        row["network"] = network_deletion(model, index.tolist(), np.random.default_rng(seed))
    row["ms_plain"], row["ms_per_list"] = cost_ms(model, users[:50], False), cost_ms(model, users[:50], True)
    _doc.log(f"{label}: {json.dumps(row, default=float)}")
    return row


def train_rows(model, train) -> dict:
    """Each training user's ``(item indices, ratings)`` (every rating, liked or not)."""
    frame = train.frame
    items = model.items_.index(frame["item"].to_numpy(), unknown="missing")
    out = {}
    for user, part in frame.assign(k=items).groupby("user", sort=False):
        keep = part["k"].to_numpy() >= 0
        out[user] = (part["k"].to_numpy()[keep].astype(np.int64), part["rating"].to_numpy(dtype=np.float64)[keep])
    return out


def table(rows: dict) -> list[str]:
    lines = [
        ("| model | items tested | score falls more without the 3 reasons than without 3 random liked items | "
         "mean fall: reasons / random (the 3 shares shown) | leaves the top 10: reasons / random | shares sum to "
         "the score (max gap) | known users: surrogate r (10th pct) / MAE | ms per known user's top-10: plain / "
         "explained | fit s |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        d, s = r["deletion"], r.get("surrogate")
        gap = "exact (EASE's B)" if "ease" in label else ("leave-one-out" if d["max_gap"] is None else f"{d['max_gap']:.1e}")
        known = f"{s['pearson']:.3f} ({s['pearson_p10']:.3f}) / {s['mae']:.3f}" if s else "same as new users"
        lines.append(f"| {label} | {d['items']} | **{100 * d['wins']:.1f} %** | {d['fall_why']:.3f} / "
                     f"{d['fall_random']:.3f} ({d['shares_shown']:.3f}) | {100 * d['out_why']:.1f} % / "
                     f"{100 * d['out_random']:.1f} % | {gap} | {known} | {r['ms_plain']:.1f} / {r['ms_per_list']:.1f} | "
                     f"{r['fit_s']:.1f} |")
    for label, r in rows.items():
        if "network" in r:
            n = r["network"]
            lines += ["", (f"Known users of {label}, whose input row the network reads: taking the 3 reasons out of "
                           f"the row lowers the network's own predicted rating more than taking out 3 random liked "
                           f"items for **{100 * n['wins']:.1f} %** of {n['items']} items (mean fall "
                           f"{n['fall_why']:.3f} against {n['fall_random']:.3f} rating points).")]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200, help="users tested per model (seeded)")
    parser.add_argument("--models", default=None, help="kinds, comma-separated (default: every row)")
    parser.add_argument("--no-doc", action="store_true", help="print the results; do not touch docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    home = os.environ.get("AEREC_DATA_HOME")
    if not home or not (Path(home) / "ml-100k" / "u1.base").is_file():
        sys.exit("set AEREC_DATA_HOME to a folder holding ml-100k/ (aerec datasets download ml-100k)")
    train = read_ratings(Path(home) / "ml-100k" / "u1.base")
    wanted = None if args.models is None else {w.strip() for w in args.models.split(",") if w.strip()}
    rows = {label: measure(label, est, kind, params, train, args.users, seed=0)
            for label, (est, kind, params) in MODELS.items() if wanted is None or kind in wanted}
    lines = [f"Measured {_doc.now()} on {_doc.machine()} (load {_doc.load_text()}), one thread.",
             "Command: `AEREC_DATA_HOME=/path/to/data python benchmarks/explanations.py`.", "", *table(rows)]
    text = "\n".join(lines)
    print(text)
    if not args.no_doc:
        _doc.write_block("explanations.py", text, section=SECTION, intro=(
            "How faithful `recommend(..., explain=True)` is to each model, on u1.base: the method and how to "
            "read the figures are in [docs/explanations.md](explanations.md)."))


if __name__ == "__main__":
    main()
