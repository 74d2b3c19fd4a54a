"""Long property-based runs over every reader and the config loader, counting what they saw.

Unlike the tests (which stop at the first failure), this runner keeps going and groups every
unexpected exception by its type and the aerec line it came from, so one run lists all the
findings. Usage (from the repository root)::

    python -m fuzz.run_hypothesis                 # 10,000 inputs per target
    python -m fuzz.run_hypothesis -n 50000 --only readers:csv config:toml
    python -m fuzz.run_hypothesis --json counts.json

Exit status 1 when anything but a documented error (DataError, ConfigError) came out.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import traceback
from typing import Any, Callable

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fuzz import strategies as S
from fuzz import targets as T


def _signature(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/aerec/" in f.filename]
    where = f"{frames[-1].filename.split('/src/')[-1]}:{frames[-1].lineno} {frames[-1].name}" if frames else "?"
    return f"{type(exc).__name__} at {where}: {str(exc)[:160]}"


def _run(name: str, strategy: st.SearchStrategy, check: Callable[[Any], str], n: int) -> dict[str, Any]:
    outcomes: collections.Counter[str] = collections.Counter()
    findings: dict[str, str] = {}

    @settings(max_examples=n, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def body(case):
        try:
            outcomes[check(case)] += 1
        except Exception as exc:  # noqa: BLE001 - counting every kind of finding is the point
            sig = _signature(exc)
            outcomes["FINDING"] += 1
            findings.setdefault(sig, repr(case)[:400])

    started = time.perf_counter()
    body()
    seconds = time.perf_counter() - started
    total = sum(outcomes.values())
    print(f"{name:<22} {total:>7} inputs  {seconds:7.1f} s  {dict(outcomes)}", flush=True)
    for sig, example in findings.items():
        print(f"    FINDING {sig}\n        e.g. {example}", flush=True)
    return {"inputs": total, "seconds": round(seconds, 1), "outcomes": dict(outcomes), "findings": findings}


def targets(work: T.Workdir) -> dict[str, tuple[st.SearchStrategy, Callable[[Any], str]]]:
    """Every fuzz target: name -> (strategy of cases, check returning the outcome)."""
    out: dict[str, tuple[st.SearchStrategy, Callable[[Any], str]]] = {}
    for fmt in T.READER_FORMATS:
        if fmt == "parquet":
            cases = st.tuples(st.one_of(S.near_valid_table(), S.parquet_table(), S.mutated("parquet"), st.binary(max_size=200)),
                              S.reader_options("parquet"))
            out["readers:parquet"] = (cases, lambda c: T.parquet_case(work, c[0], c[1]))
            continue
        cases = st.tuples(S.file_bytes(fmt), S.reader_options(fmt))
        out[f"readers:{fmt}"] = (cases, lambda c, fmt=fmt: T.read_case(work, fmt, c[0], c[1]))
    out["readers:metadata"] = (S.metadata_file(), lambda c: T.metadata_case(work, c[0], c[1]))
    out["config:toml"] = (st.tuples(S.toml_text(), st.lists(st.sampled_from(["train.epochs=2", "run.seed=1"]), max_size=1)),
                          lambda c: T.toml_case(work, c[0], c[1]))
    out["config:overrides"] = (S.override_lists(), T.overrides_case)
    out["config:dict"] = (S.config_dicts(), T.config_dict_case)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10_000, help="inputs per target (default 10000)")
    parser.add_argument("--only", nargs="*", help="target names or prefixes, e.g. readers: config:toml")
    parser.add_argument("--json", help="write the counts and findings to this file")
    args = parser.parse_args(argv)
    work = T.Workdir()
    results = {}
    try:
        for name, (strategy, check) in targets(work).items():
            if args.only and not any(name.startswith(o) for o in args.only):
                continue
            results[name] = _run(name, strategy, check, args.n)
    finally:
        work.close()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1)
    return 1 if any(r["findings"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
