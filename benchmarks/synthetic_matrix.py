"""Time and memory of building a synthetic rating matrix (the data layer's scaling benchmark).

Builds :func:`aerec.data.synthetic.synthetic_matrix_with_info` in a fresh Python process, so the
peak resident memory (``ru_maxrss``, KiB on Linux) is that build's alone, and prints one
markdown table row: ratings, shape, wall time, ratings per second, peak RSS, the RSS of the
bare imports (numpy, scipy, pandas, aerec) for reference, and the command. The target is a
peak RSS under 2 GB for 10^7 ratings.

    python benchmarks/synthetic_matrix.py --n-ratings 10000000 --seed 0 [--append-md]

``--append-md`` adds the row to the table of the section "## Data layer: building a synthetic
matrix" of docs/benchmarks.md (written atomically); ``--max-rss-mib N`` exits 1 when the peak
is over ``N`` MiB, so the script can guard the memory target in CI.
"""

from __future__ import annotations

import os

# As the aerec command does: OpenMP threads sleep instead of spinning while they wait. libgomp
# reads this only when torch loads, so it is set before any import that may load torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Data layer: building a synthetic matrix"
HEADER = (
    "| ratings | users x items (rated) | wall s | ratings/s | peak RSS MiB | imports RSS MiB | machine | command |\n"
    "| ---: | --- | ---: | ---: | ---: | ---: | --- | --- |\n"
)


def _child(n_ratings: int, seed: int, chunk_ratings: int) -> None:
    """Runs in the fresh process: build once, print one JSON line of measurements."""
    from aerec.data.synthetic import synthetic_matrix_with_info

    imports_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    m, info = synthetic_matrix_with_info(n_ratings, seed=seed, chunk_ratings=chunk_ratings)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "n_ratings": m.nnz, "n_users": m.n_users, "n_items": info.meta["n_items"], "n_items_rated": m.n_items,
        "wall_s": wall, "peak_rss_kib": peak_kib, "imports_rss_kib": imports_kib,
        "noise_floor_rmse": info.noise_floor_rmse,
    }))


def _machine() -> str:
    """Cores and memory (and the CPU model when /proc/cpuinfo names it)."""
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip() + ", "
                break
    except OSError:
        pass
    return f"{model}{os.cpu_count()} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}"


def _row(r: dict, command: str) -> str:
    return (
        f"| {r['n_ratings']:,} | {r['n_users']:,} x {r['n_items']:,} ({r['n_items_rated']:,}) | {r['wall_s']:.1f} "
        f"| {r['n_ratings'] / r['wall_s']:,.0f} | {r['peak_rss_kib'] / 1024:,.0f} | {r['imports_rss_kib'] / 1024:,.0f} "
        f"| {_machine()} | `{command}` |"
    )


def _append(row: str, doc: Path = DOC) -> None:
    """Add ``row`` to the table of our section, creating the file/section/table when missing."""
    text = doc.read_text() if doc.exists() else (
        "# aerec benchmarks\n\nEvery figure here comes with the command that produced it, run from the repository "
        "root, and the machine it ran on.\n"
    )
    if SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{HEADER}"
    start = text.index(SECTION)
    nxt = text.find("\n## ", start + len(SECTION))
    end = len(text) if nxt < 0 else nxt + 1
    section = text[start:end]
    if HEADER not in section:
        section = section.rstrip("\n") + f"\n\n{HEADER}"
    # The row goes right after the table's last line.
    head_at = section.index(HEADER)
    lines = section[head_at + len(HEADER):].split("\n")
    k = 0
    while k < len(lines) and lines[k].startswith("|"):
        k += 1
    lines.insert(k, row)
    section = section[: head_at + len(HEADER)] + "\n".join(lines)
    if not section.endswith("\n"):
        section += "\n"
    text = text[:start] + section + text[end:]
    fd, tmp = tempfile.mkstemp(dir=doc.parent, prefix=".benchmarks.", suffix=".md")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, doc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-ratings", type=float, default=10_000_000, help="ratings to generate (1e7 is fine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk-ratings", type=int, default=2_000_000, help="ratings per generation step")
    p.add_argument("--append-md", action="store_true", help=f"add the row to {DOC.relative_to(ROOT)}")
    p.add_argument("--max-rss-mib", type=float, default=None, help="exit 1 if the peak RSS is above this")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    n = int(a.n_ratings)
    if a.child:
        _child(n, a.seed, a.chunk_ratings)
        return 0

    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--n-ratings", str(n), "--seed", str(a.seed),
           "--chunk-ratings", str(a.chunk_ratings)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    shown = f"python benchmarks/synthetic_matrix.py --n-ratings {n} --seed {a.seed}"
    if a.chunk_ratings != 2_000_000:
        shown += f" --chunk-ratings {a.chunk_ratings}"
    row = _row(result, shown)
    print(f"noise floor RMSE {result['noise_floor_rmse']:.4f}", file=sys.stderr)
    print(row)
    if a.append_md:
        _append(row)
        print(f"added to {DOC}", file=sys.stderr)
    if a.max_rss_mib is not None and result["peak_rss_kib"] / 1024 > a.max_rss_mib:
        print(f"peak RSS {result['peak_rss_kib'] / 1024:.0f} MiB is over {a.max_rss_mib:.0f} MiB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
