"""Load test of ``aerec serve``: fold-in recommendations for new users under concurrent requests.

A bounded test from a second process on 127.0.0.1. The server (``python -m aerec serve``, in a
subprocess) serves a model trained on MovieLens 100K (``$AEREC_DATA_HOME/ml-100k/u.data``; the
default model, as ``aerec train`` fits it); the client sends ``POST /v1/recommendations`` bodies
made from real ML-100K users (5 to 20 of one user's ratings, n=10) as fast as the server answers,
over a fixed number of keep-alive connections for a fixed time. Reports requests per second,
p50/p99 latency and errors (any answer but 200, or a socket error). Target on 2 cores:
>= 300 requests/s, p99 <= 50 ms, zero errors.

The client is ``wrk`` (Debian: ``apt-get install wrk``) with a Lua script cycling through the
bodies when it is installed, else httpx in threads (slower: the client then takes CPU from the
server on a small machine). Skips (exit 0, saying so) when ML-100K is absent.

    AEREC_DATA_HOME=/path/to/data python benchmarks/serve_load.py [--model-dir DIR]
        [--duration 10] [--connections 8] [--workers 1] [--repeat 1] [--client auto|wrk|httpx] [--cpus 0,1]

``--model-dir DIR`` reuses a model there, or trains and saves one there when DIR has none.
``--cpus`` pins the server and the client to those CPUs (to measure "2 cores" on a bigger machine).
"""

from __future__ import annotations

import os

# As the aerec command does: OpenMP threads sleep instead of spinning while they wait. libgomp
# reads this only when torch loads, so it is set before any import that may load torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

TARGET_RPS, TARGET_P99_MS = 300.0, 50.0
MAX_DURATION_S, MAX_CONNECTIONS = 120.0, 256

WRK_SCRIPT = r"""
-- Cycle through JSON bodies, one per line of the file given after "--".
local bodies, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
function request()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/recommendations", {["Content-Type"] = "application/json"}, bodies[i])
end
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data and model
def find_ml100k(data_home: str | None) -> Path | None:
    home = data_home or os.environ.get("AEREC_DATA_HOME")
    if not home:
        return None
    folder = Path(home) / "ml-100k"
    return folder if (folder / "u.data").is_file() else None


def ensure_model(model_dir: Path, data: Path, threads: int) -> dict[str, Any]:
    """Reuse the model in ``model_dir``, or fit the default model on all of ML-100K and save it there."""
    if (model_dir / "model.json").is_file():
        log(f"using the model in {model_dir}")
        return {"trained": False}
    import torch

    from aerec.data import read_ratings
    from aerec.recommender import Recommender

    if threads > 0:
        torch.set_num_threads(threads)
    ratings = read_ratings(data / "u.data")
    log(f"training the default model on {data / 'u.data'} ({len(ratings)} ratings) ...")
    start = time.perf_counter()
    model = Recommender().fit(ratings)
    seconds = time.perf_counter() - start
    model.save(model_dir)
    log(f"trained {model.config.kind} in {seconds:.0f} s -> {model_dir}")
    return {"trained": True, "train_seconds": seconds}


def make_bodies(data: Path, count: int, seed: int) -> list[str]:
    """``count`` request bodies: 5..20 ratings of one real ML-100K user each, n=10."""
    from aerec.data import read_ratings

    frame = read_ratings(data / "u.data").frame
    groups = {u: g for u, g in frame.groupby("user")}
    users = list(groups)
    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(count):
        g = groups[users[int(rng.integers(len(users)))]]
        k = int(rng.integers(5, 21))
        rows = g.iloc[rng.choice(len(g), size=min(k, len(g)), replace=False)]
        ratings = {str(i): float(r) for i, r in zip(rows["item"], rows["rating"])}
        bodies.append(json.dumps({"ratings": ratings, "n": 10}, separators=(",", ":")))
    return bodies


# ----------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def start_server(model_dir: Path, port: int, workers: int, threads: int, cpus: str | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "aerec", "serve", str(model_dir), "--port", str(port), "--log-level", "warning",
           "--workers", str(workers), "--threads", str(threads), "--max-n", "100"]
    log("server: " + " ".join(pinned(cmd, cpus)))
    proc = subprocess.Popen(pinned(cmd, cpus), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    # With several workers, give the others time to load the model too.
                    time.sleep(1.0 + 0.5 * (workers - 1))
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not answer /health within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def check_answers(url: str, bodies: list[str]) -> None:
    """A few requests checked for content before the timed run: 10 unrated items each."""
    for body in bodies[:5]:
        req = urllib.request.Request(url + "/v1/recommendations", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = json.loads(r.read())
        items = [rec["item_id"] for rec in answer["recommendations"]]
        rated = set(json.loads(body)["ratings"])
        if len(items) != 10 or rated & set(items):
            raise RuntimeError(f"unexpected answer for {body[:80]}...: {answer}")


# ----------------------------------------------------------------------------- clients
def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(url: str, bodies: list[str], connections: int, duration: float, cpus: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        script, data = Path(tmp) / "post.lua", Path(tmp) / "bodies.jsonl"
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        data.write_text("\n".join(bodies) + "\n", encoding="utf-8")
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "5s",
               "-s", str(script), url, "--", str(data)]
        out = subprocess.run(pinned(cmd, cpus), capture_output=True, text=True, check=True).stdout
    dist = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    return {
        "client": "wrk", "requests": requests, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(dist["50"]), "p99_ms": _ms(dist["99"]), "errors": errors, "raw": out,
    }


def run_httpx(url: str, bodies: list[str], connections: int, duration: float) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    with httpx.Client(base_url=url, limits=limits, timeout=5.0) as client:
        deadline = time.perf_counter() + duration

        def worker(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                body = bodies[i % len(bodies)]
                i += connections
                t0 = time.perf_counter()
                try:
                    r = client.post("/v1/recommendations", content=body, headers={"Content-Type": "application/json"})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies[k].append(time.perf_counter() - t0)
                errors[k] += not ok

        start = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    lat = np.concatenate([np.asarray(x) for x in latencies]) * 1e3
    return {"client": "httpx", "requests": int(lat.size), "rps": lat.size / elapsed,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)), "errors": int(sum(errors))}


# ----------------------------------------------------------------------------- main
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-home", default=None, help="folder holding ml-100k/ (default: $AEREC_DATA_HOME)")
    p.add_argument("--model-dir", type=Path, default=None, help="reuse (or train and keep) the model here")
    p.add_argument("--duration", type=float, default=10.0, help=f"seconds of load (at most {MAX_DURATION_S:g}); default 10")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of untimed load first; default 2")
    p.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections; default 8")
    p.add_argument("--workers", type=int, default=1, help="server processes (aerec serve --workers); default 1")
    p.add_argument("--threads", type=int, default=1, help="torch threads per server process; default 1")
    p.add_argument("--client", choices=["auto", "wrk", "httpx"], default="auto", help="load generator; default wrk if installed")
    p.add_argument("--cpus", default=None, help="pin server and client to these CPUs (taskset list, e.g. 0,1)")
    p.add_argument("--bodies", type=int, default=1000, help="distinct request bodies to cycle through; default 1000")
    p.add_argument("--repeat", type=int, default=1, help="timed runs against the same server (each reported); default 1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    a = p.parse_args(argv)
    if not 0 < a.duration <= MAX_DURATION_S or not 0 < a.connections <= MAX_CONNECTIONS:
        p.error(f"--duration must be in (0, {MAX_DURATION_S:g}] and --connections in [1, {MAX_CONNECTIONS}]")

    data = find_ml100k(a.data_home)
    if data is None:
        log("skipped: MovieLens 100K not found; set AEREC_DATA_HOME to a folder holding ml-100k/")
        return 0
    client = a.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "httpx"
    if client == "wrk" and not shutil.which("wrk"):
        p.error("wrk is not installed (apt-get install wrk); use --client httpx")
    if a.cpus and not shutil.which("taskset"):
        p.error("--cpus needs taskset (util-linux)")

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = a.model_dir or Path(tmp) / "model"
        trained = ensure_model(model_dir, data, a.threads)
        bodies = make_bodies(data, a.bodies, a.seed)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(model_dir, port, a.workers, a.threads, a.cpus)
        try:
            check_answers(url, bodies)
            run = (lambda d: run_wrk(url, bodies, a.connections, d, a.cpus)) if client == "wrk" else (
                lambda d: run_httpx(url, bodies, a.connections, d))
            if a.warmup > 0:
                run(a.warmup)
            results = []
            for _ in range(max(1, a.repeat)):
                load = os.getloadavg()[0]  # other work on the machine competes for the same cores
                results.append({**run(a.duration), "load_avg_1min": load})
        finally:
            stop_server(server)

    for result in results:
        ok = result["rps"] >= TARGET_RPS and result["p99_ms"] <= TARGET_P99_MS and result["errors"] == 0
        result.update({
            "duration_s": a.duration, "connections": a.connections, "workers": a.workers, "threads": a.threads,
            "cpus": a.cpus or f"all {os.cpu_count()}", "machine": machine(), "target_met": ok, **trained,
        })
        raw = result.pop("raw", None)
        if raw:
            log(raw.rstrip())
        log(f"{result['requests']} requests in {a.duration:g} s: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
            f"p99 {result['p99_ms']:.2f} ms, {result['errors']} errors ({'meets' if ok else 'misses'} the target of "
            f">= {TARGET_RPS:g} req/s, p99 <= {TARGET_P99_MS:g} ms, no errors); load average before: "
            f"{result['load_avg_1min']:.1f}")
    log("| client | workers | connections | CPUs | load avg | requests | req/s | p50 ms | p99 ms | errors |")
    for result in results:
        print(f"| {client} | {a.workers} | {a.connections} | {result['cpus']} | {result['load_avg_1min']:.1f} | "
              f"{result['requests']:,} | {result['rps']:,.0f} | {result['p50_ms']:.2f} | {result['p99_ms']:.2f} | "
              f"{result['errors']} |")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
