"""Brand-new users and top-N lists of the rating models, on MovieLens 100K.

(1) The new-user curve. 150 users with at least 40 ratings are held out (seeded); each family
    is trained on everyone else. Each held-out user then gives the first k of their ratings (one
    fixed random order per user) to ``new_user_scores``, and the RMSE is taken on the *same*
    remaining ratings (those past the 20th) for every k = 0, 1, 3, 5, 10, 20. Beside it, the
    damped bias fold-in: ``mu + b_i + b_u`` with ``b_u`` the user's mean residual shrunk by the
    bias model's ``reg_user``. Checks, per family: the curve never rises by more than 0.003, it
    is never above the bias fold-in, and RMSE(k=10) <= 0.97 x RMSE(k=0).
(2) Top-N on u1. The default model trained on u1.base ranks, for every u1 test user, every item
    with training ratings that the user did not rate in training; relevant = the user's u1.test
    ratings >= 4. Precision@10 and NDCG@10 of its lists, of the most-popular list and of a
    ranking by the clipped predicted rating (how aerec ranked before), with the median number of
    training ratings of the recommended items.

Writes the tables into docs/benchmarks.md ("## New users and top-N lists") and the plot
docs/new_users.png, unless ``--no-doc``.

    AEREC_DATA_HOME=/path/to/data python benchmarks/new_users.py [--families autorec,sae] [--no-doc]
"""

from __future__ import annotations

import os

# As the aerec command does: OpenMP threads sleep instead of spinning while they wait. libgomp
# reads this only when torch loads, so it is set before any import that may load torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _doc  # noqa: E402

from aerec import Recommender, load_dataset, read_ratings  # noqa: E402
from aerec.ranking import evaluate_ranking, top_k  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## New users and top-N lists"
KS = (0, 1, 3, 5, 10, 20)
FAMILIES = {  # label -> (kind, params)
    "autorec (I-AutoRec default)": ("autorec", {}),
    "autorec (U-AutoRec)": ("autorec", {"preset": "u-autorec"}),
    "sae": ("sae", {}),
    "deep": ("deep", {}),
    "dae": ("dae", {}),
    "sparse": ("sparse", {}),
}
TOLERANCE = 0.003


def held_out_protocol(ratings, n_users: int = 150, min_ratings: int = 40, seed: int = 0):
    """(training Ratings, {user: (given frame, evaluation frame)}) of the new-user protocol."""
    frame = ratings.frame
    counts = frame.groupby("user").size()
    rng = np.random.default_rng(seed)
    users = rng.choice(counts.index[counts >= min_ratings].to_numpy(), n_users, replace=False)
    test = frame["user"].isin(users).to_numpy()
    parts = {}
    for u, part in frame[test].groupby("user"):
        part = part.iloc[rng.permutation(len(part))]
        parts[u] = (part.iloc[: max(KS)], part.iloc[max(KS):])
    return ratings.subset(~test), parts


def curve(model, parts, score) -> list[float]:
    """RMSE over every user's evaluation ratings for each k; ``score(idx, values)`` -> (n_items,)."""
    out = []
    for k in KS:
        se, n = 0.0, 0
        for given, rest in parts.values():
            gi = model.items_.index(given["item"].to_numpy()[:k], unknown="missing")
            gv = given["rating"].to_numpy(np.float64)[:k]
            scores = score(gi[gi >= 0], gv[gi >= 0])
            ei = model.items_.index(rest["item"].to_numpy(), unknown="missing")
            pred = np.where(ei >= 0, scores[np.maximum(ei, 0)], model.bias_.mu_)
            pred = np.clip(pred, model.scale_.low, model.scale_.high)
            se += float(((pred - rest["rating"].to_numpy()) ** 2).sum())
            n += len(rest)
        out.append(float(np.sqrt(se / n)))
    return out


def bias_fold_in(model):
    """The damped bias fold-in of ``model``'s own bias model."""
    b = model.bias_
    base = b.mu_ + b.item_bias_.astype(np.float64)

    def score(idx, values):
        user = float((values - base[idx]).sum() / (len(idx) + b.reg_user)) if len(idx) else 0.0
        return base + user

    return score


def checks(rmse: list[float], floor: list[float]) -> dict[str, bool]:
    return {
        "monotone": all(b <= a + TOLERANCE for a, b in zip(rmse, rmse[1:])),
        "<= bias fold-in": all(r <= f + 1e-12 for r, f in zip(rmse, floor)),
        "k=10 <= 0.97 k=0": rmse[KS.index(10)] <= 0.97 * rmse[0],
    }


def new_user_part(families: list[str], threads: int) -> dict:
    ratings = load_dataset("ml-100k")
    train, parts = held_out_protocol(ratings)
    rows = {}
    for label in families:
        kind, params = FAMILIES[label]
        _doc.log(f"fitting {label} on {len(train):,} ratings")
        t0 = time.perf_counter()
        model = Recommender(kind, **params).fit(train)
        seconds = time.perf_counter() - t0
        rmse = curve(model, parts, model.new_user_scores)
        floor = curve(model, parts, bias_fold_in(model))
        rows[label] = {"rmse": rmse, "bias": floor, "checks": checks(rmse, floor), "fit_seconds": seconds,
                       "choice": model.fold_in_choice_.to_dict()}
        _doc.log(f"{label}: {np.round(rmse, 4).tolist()} (bias {np.round(floor, 4).tolist()}) {rows[label]['checks']}")
    return {"n_test_users": len(parts), "n_train": len(train),
            "n_eval": int(sum(len(rest) for _, rest in parts.values())), "families": rows}


def top_n_part(data_home: Path, threads: int) -> dict:
    import scipy.sparse as sp

    train = read_ratings(data_home / "ml-100k" / "u1.base")
    test = read_ratings(data_home / "ml-100k" / "u1.test")
    model = Recommender("autorec").fit(train)
    frame = test.frame[test.frame["rating"] >= 4]
    u = model.users_.index(frame["user"].to_numpy(), unknown="missing")
    i = model.items_.index(frame["item"].to_numpy(), unknown="missing")
    keep = (u >= 0) & (i >= 0)
    keep[keep] = model.item_counts_[i[keep]] > 0
    held = sp.csr_array((np.ones(int(keep.sum())), (u[keep], i[keep])), shape=(len(model.users_), len(model.items_)))
    never = torch.from_numpy(model.item_counts_ == 0)
    counts = torch.from_numpy(model.item_counts_.astype(np.float64))

    def popular(pos):
        return counts.expand(len(pos), -1).clone().masked_fill(never, -np.inf)

    def clipped(pos):  # how lists were ranked before: the clipped prediction
        s = torch.from_numpy(np.clip(model.predicted_block(pos), model.scale_.low, model.scale_.high))
        return s.masked_fill(never, -np.inf)

    out = {}
    for name, rows in (("aerec default (relevance)", model.ranking_block), ("most popular", popular),
                       ("aerec default, by clipped prediction", clipped)):
        res = evaluate_ranking(rows, model.train_csr_, held, ("precision@10", "ndcg@10"))
        users = np.flatnonzero(np.diff(held.indptr) > 0)
        top = top_k(rows(users), model.train_csr_[users], 10)  # (n_users, 10), the lists scored above
        support = model.item_counts_[top[top >= 0]]
        out[name] = {"precision@10": res["precision@10"], "ndcg@10": res["ndcg@10"], "n_users": res["n_users"],
                     "median_support": float(np.median(support)),
                     "distinct_items": int(len(np.unique(top[top >= 0])))}
        _doc.log(f"{name}: {out[name]}")
    return out


def render(result: dict) -> str:
    nu, tn = result["new_users"], result["top_n"]
    lines = [
        f"Measured {result['when']} on {result['machine']} ({result['threads']} thread(s); "
        f"load {result['load']}), {result['seconds']:.0f} s in all.",
        "Command: `AEREC_DATA_HOME=/path/to/data python benchmarks/new_users.py`.",
        "",
        f"**New users** ({nu['n_test_users']} held-out ML-100K users with >= 40 ratings; every family "
        f"trained on the other {nu['n_train']:,} ratings; RMSE on the same {nu['n_eval']:,} ratings of "
        "theirs for every k):",
        "",
        "| model | " + " | ".join(f"k={k}" for k in KS) + " | monotone | <= bias | k=10 <= 0.97 k=0 |",
        "| --- | " + " | ".join("---:" for _ in KS) + " | --- | --- | --- |",
    ]
    first = next(iter(nu["families"].values()))
    lines.append("| damped bias fold-in | " + " | ".join(f"{x:.4f}" for x in first["bias"]) + " | | | |")
    for label, row in nu["families"].items():
        marks = ["yes" if ok else "**no**" for ok in row["checks"].values()]
        lines.append(f"| {label} | " + " | ".join(f"{x:.4f}" for x in row["rmse"]) + " | " + " | ".join(marks) + " |")
    lines += ["", "What validation chose per bucket of k (0, 1, 2-3, 4-7, 8-15, 16+): prior and alpha", ""]
    for label, row in nu["families"].items():
        pairs = ", ".join(f"{p}/{a:g}" for p, a in zip(row["choice"]["prior"], row["choice"]["alpha"]))
        lines.append(f"- {label}: {pairs}")
    lines += [
        "",
        "**Top-N on u1** (train u1.base; relevant = u1.test ratings >= 4; candidates = every item with "
        "training ratings that the user did not rate in training):",
        "",
        "| ranking | precision@10 | NDCG@10 | median training ratings of the items shown | distinct items shown |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in tn.items():
        lines.append(f"| {name} | {row['precision@10']:.4f} | {row['ndcg@10']:.4f} | {row['median_support']:.0f} | "
                     f"{row['distinct_items']} |")
    lines += ["", "![RMSE of a new user's predictions against the number of ratings given](new_users.png)"]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    families = result["new_users"]["families"]
    first = next(iter(families.values()))
    ax.plot(KS, first["bias"], "k--", marker="s", label="damped bias fold-in")
    for label, row in families.items():
        ax.plot(KS, row["rmse"], marker="o", label=label)
    ax.set_xlabel("ratings the new user gave (k)")
    ax.set_ylabel("RMSE on the user's other ratings")
    ax.set_title("New users on ML-100K: 150 held-out users")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated labels of FAMILIES")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    home = os.environ.get("AEREC_DATA_HOME")
    if not home or not (Path(home) / "ml-100k" / "u.data").exists():
        sys.exit("set AEREC_DATA_HOME to a folder holding ml-100k/ (aerec datasets download ml-100k)")
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    result = {"when": _doc.now(), "machine": _doc.machine(), "load": _doc.load_text(), "threads": args.threads,
              "new_users": new_user_part(families, args.threads), "top_n": top_n_part(Path(home), args.threads)}
    result["seconds"] = time.perf_counter() - t0
    text = render(result)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if not args.no_doc:
        plot(result, ROOT / "docs" / "new_users.png")
        _doc.write_block("new_users.py", text, section=SECTION, intro=(
            "How a brand-new user's predictions improve with each rating they give, and how the top-N "
            "lists of the default rating model compare with the most-popular list. The method: "
            "[docs/new_users.md](new_users.md)."))


if __name__ == "__main__":
    main()
