"""Similar items on MovieLens 100K: do an item's neighbours share its genres?

Each model is trained on u1.base (its defaults). For every movie with at least 20 training
ratings, ``similar_items(movie, n=10)`` lists its ten neighbours; the figure is the share of
(movie, neighbour) pairs that have a genre in common (u.item's 19 flags, "unknown" ignored),
against the same share for 20,000 random pairs of distinct such movies (seeded). Their ratio
is the lift. The same, for every rated movie, is in the last columns. The time is per query,
after the model is loaded (its item vectors are read and normalised on each call).

Writes the table into docs/benchmarks.md ("## Similar items") unless ``--no-doc``.

    AEREC_DATA_HOME=/path/to/data python benchmarks/similar_items.py [--families autorec,ease] [--no-doc]
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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _doc  # noqa: E402

from aerec import ImplicitRecommender, Recommender, read_ratings  # noqa: E402

SECTION = "## Similar items"
FAMILIES = {  # label -> (estimator, kind, params)
    "autorec (I-AutoRec: the default)": (Recommender, "autorec", {}),
    "autorec (U-AutoRec)": (Recommender, "autorec", {"preset": "u-autorec"}),
    "sae": (Recommender, "sae", {}),
    "ease": (ImplicitRecommender, "ease", {}),
    "multvae": (ImplicitRecommender, "multvae", {}),
    "popularity (co-occurrence)": (ImplicitRecommender, "popularity", {}),
}


def genre_overlap(model, n: int = 10, min_ratings: int = 20, pairs: int = 20_000, seed: int = 0) -> dict:
    """Share of (item, neighbour) pairs with a genre in common, against random pairs (as
    tests/test_similar.py measures it); items with at least ``min_ratings`` training ratings."""
    genres = {k: set(str(v).split("|")) - {"", "unknown"} for k, v in model.item_info_["genres"].items()}
    items = model.items_.labels[np.asarray(model.item_counts_) >= min_ratings]
    started = time.perf_counter()
    lists = [model.similar_items(q, n=n)["item"].tolist() for q in items]
    per_query = (time.perf_counter() - started) / max(len(items), 1)
    shared = [bool(genres[q] & genres[j]) for q, found in zip(items, lists) for j in found]
    rng = np.random.default_rng(seed)
    a, b = rng.choice(items, pairs), rng.choice(items, pairs)
    random = [bool(genres[x] & genres[y]) for x, y in zip(a, b) if x != y]
    overlap, chance = float(np.mean(shared)), float(np.mean(random))
    return {"overlap": overlap, "random": chance, "lift": overlap / chance, "items": len(items),
            "ms_per_query": 1000 * per_query}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=None, help="kinds, comma-separated (default: every row)")
    parser.add_argument("--no-doc", action="store_true", help="print the results; do not touch docs/benchmarks.md")
    args = parser.parse_args()
    home = os.environ.get("AEREC_DATA_HOME")
    if not home or not (Path(home) / "ml-100k" / "u1.base").is_file():
        sys.exit("set AEREC_DATA_HOME to a folder holding ml-100k/ (aerec datasets download ml-100k)")
    train = read_ratings(Path(home) / "ml-100k" / "u1.base")
    wanted = None if args.families is None else {w.strip() for w in args.families.split(",") if w.strip()}
    rows = {}
    for label, (estimator, kind, params) in FAMILIES.items():
        if wanted is not None and kind not in wanted:
            continue
        _doc.log(f"fitting {label} on {len(train):,} ratings")
        started = time.perf_counter()
        model = estimator(kind, **params).fit(train)
        fit_s = time.perf_counter() - started
        rows[label] = {"fit_s": fit_s, "rated_20": genre_overlap(model), "rated_1": genre_overlap(model, min_ratings=1)}
        _doc.log(f"{label}: {json.dumps(rows[label], default=float)}")
    lines = [
        f"Measured {_doc.now()} on {_doc.machine()} (load {_doc.load_text()}).",
        "Command: `AEREC_DATA_HOME=/path/to/data python benchmarks/similar_items.py`.",
        "",
        ("| model | movies queried | share of top-10 neighbours with a shared genre | random pairs | lift | "
         "all rated movies: neighbours / random / lift | ms per query | fit (s) |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        a, b = r["rated_20"], r["rated_1"]
        lines.append(f"| {label} | {a['items']} | {a['overlap']:.3f} | {a['random']:.3f} | **{a['lift']:.2f}** | "
                     f"{b['overlap']:.3f} / {b['random']:.3f} / {b['lift']:.2f} | {a['ms_per_query']:.1f} | "
                     f"{r['fit_s']:.1f} |")
    lines += ["", ("Queries: the movies with at least 20 training ratings in u1.base (for the implicit models, "
                   "at least 20 positives: ratings of 4 or 5); the \"all rated movies\" column queries every rated "
                   "(liked) movie. Neighbours may be any rated (liked) movie.")]
    text = "\n".join(lines)
    print(text)
    if not args.no_doc:
        _doc.write_block("similar_items.py", text, section=SECTION, intro=(
            "Whether `similar_items` finds movies alike: on u1.base, the share of a movie's ten nearest "
            "neighbours that share one of its genres, against random pairs of movies. The item vectors each "
            "family compares: [docs/models.md](models.md#similar-items)."))


if __name__ == "__main__":
    main()
