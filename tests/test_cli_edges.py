"""Rough edges a new user hits, driven through the real command (``python -m aerec``) in a
subprocess: unwritable output paths, ``-`` for stdin/stdout, compressed files, column names,
very long ids, the evaluate fallback warning, inferred scales and options a family ignores.

Every case asserts the exit code, the message and that no traceback reaches the user.
Data are tiny and synthetic so each command takes about a second.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TIMEOUT = 180


ENV = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def aerec(*args: str | Path, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "aerec", *map(str, args)], input=stdin if stdin is not None else b"",
        capture_output=True, timeout=TIMEOUT, env=ENV, cwd=cwd,
    )
    proc.out, proc.err = proc.stdout.decode(), proc.stderr.decode()  # type: ignore[attr-defined]
    assert "Traceback" not in proc.out + proc.err, proc.err
    return proc


def failed(proc, *needles: str, code: int = 2) -> str:
    """The one-paragraph error of a command that exited with ``code``, holding every needle."""
    assert proc.returncode == code, (proc.returncode, proc.err)
    assert "error:" in proc.err, proc.err
    message = " ".join(proc.err.split())  # Rich wraps long lines
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def _ratings_csv(seed: int = 0, users: int = 30, items: int = 40, n: int = 420) -> str:
    rng = np.random.default_rng(seed)
    cells = rng.choice(users * items, size=n, replace=False)
    lines = ["user,item,rating"] + [f"{c // items + 1},{c % items + 1},{rng.integers(1, 6)}" for c in cells]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("edges")
    (root / "r.csv").write_text(_ratings_csv(), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def model(work) -> Path:
    """A model trained from gzip-compressed ratings piped in on stdin (items 3 and 4 at once)."""
    data = gzip.compress((work / "r.csv").read_bytes())
    proc = aerec("train", "--train", "-", "--out", work / "model", "--epochs", "3", "--no-progress", stdin=data)
    assert proc.returncode == 0, proc.err
    assert "<stdin>" in proc.err  # the summary names the source as given
    return work / "model"


# ----------------------------------------------------------------------------- 1. output paths
WHERES = ("under a file", "read-only", "no write permission")
COMMANDS = ("train --out", "train --checkpoint-dir", "predict --out", "demo --out", "tune --out")


def _without_write_permission(locked: Path) -> list[str] | None:
    """A command prefix under which ``locked`` (mode 0o500) cannot be written: none for an ordinary
    user; for root, which writes anywhere, setpriv dropping CAP_DAC_OVERRIDE; None when neither works."""
    probe = [sys.executable, "-c", "import os, sys, tempfile\ntry:\n    os.rmdir(tempfile.mkdtemp(dir=sys.argv[1]))\n"
             "except PermissionError:\n    print('locked')", str(locked)]
    for prefix in ([], ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]):
        if prefix and shutil.which(prefix[0]) is None:
            continue
        try:  # 'locked' only when Python itself ran and was refused (not when setpriv could not start it)
            if subprocess.run(prefix + probe, capture_output=True, text=True, timeout=60).stdout.strip() == "locked":
                return prefix
        except (OSError, subprocess.SubprocessError):
            continue
    return None


@pytest.fixture(scope="module")
def bad_path_runs(work) -> dict:
    """Every (command, unwritable path) case, run at once (fifteen interpreter start-ups in parallel
    instead of in a row); each test below checks one of them."""
    missing = work / "missing.csv"  # had any work started, the error would be about this file
    locked = work / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    prefix = _without_write_permission(locked)
    bad = {"under a file": work / "r.csv" / "sub", "read-only": Path("/proc/aerec-edges"),
           "no write permission": locked / "sub"}
    cases = {}
    for where in WHERES:
        if where == "no write permission" and prefix is None:
            continue
        b = bad[where]
        cases[("train --out", where)] = ["train", "--train", missing, "--out", b]
        cases[("train --checkpoint-dir", where)] = ["train", "--train", missing, "--out", work / "fresh",
                                                    "--checkpoint-dir", b]
        cases[("predict --out", where)] = ["predict", work / "no-model", "--pairs", missing, "--out", b]
        cases[("demo --out", where)] = ["demo", "--out", b, "--no-progress"]
        cases[("tune --out", where)] = ["tune", "--train", missing, "--out", b, "--trials", "1"]
    runs = {}
    try:
        procs = {key: subprocess.Popen([*(prefix or []), sys.executable, "-m", "aerec", *map(str, args)],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       env=ENV)
                 for key, args in cases.items()}
        for key, proc in procs.items():
            out, err = proc.communicate(timeout=TIMEOUT)
            runs[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            runs[key].out, runs[key].err = out.decode(), err.decode()
    finally:
        locked.chmod(0o700)
    return {"runs": runs, "bad": bad}


@pytest.mark.parametrize("where", WHERES)
@pytest.mark.parametrize("command", COMMANDS)
def test_unwritable_output_is_refused_before_any_work(work, bad_path_runs, command, where):
    if where == "read-only" and not Path("/proc").is_dir():
        pytest.skip("no /proc on this system")
    if (command, where) not in bad_path_runs["runs"]:
        pytest.skip("running as root without setpriv: every folder is writable")
    proc = bad_path_runs["runs"][(command, where)]
    assert "Traceback" not in proc.out + proc.err, proc.err
    flag = command.split()[1]
    message = failed(proc, f"{flag} {bad_path_runs['bad'][where]}")
    assert "choose" in message and "missing.csv" not in message and "no-model" not in message
    expected = {"under a file": "r.csv is a file, so nothing can be created under it",
                "read-only": "cannot write in /proc", "no write permission": "(Permission denied)"}[where]
    assert expected in message, message
    assert not (work / "fresh").exists()


@pytest.mark.parametrize(("command", "refusal"), [("recommend", "--users and --out go with --all-users"),
                                                  ("evaluate", "No such option: --out")])
def test_commands_that_print_have_no_out_to_get_wrong(work, command, refusal):
    """evaluate prints (a table, or JSON with --json) and takes no --out; recommend takes one only
    with --all-users: the option is refused by name, before the model is looked at, rather than
    silently ignored."""
    proc = aerec(command, work / "no-model", "--out", "/proc/aerec-edges")
    assert proc.returncode == 2, proc.err
    assert refusal in proc.err and "no-model" not in proc.err


def test_recommend_all_users_checks_out_before_the_model(work):
    proc = aerec("recommend", work / "no-model", "--all-users", "--out", "/proc/aerec-edges/recs.csv")
    assert proc.returncode == 2, proc.err
    assert "cannot write in /proc" in proc.err and "no-model" not in proc.err


def test_out_dash_cannot_be_a_model_folder(work):
    failed(aerec("train", "--train", work / "r.csv", "--out", "-"), "--out - (stdout) cannot hold a folder")


# ----------------------------------------------------------------------------- 2. and 5. the Python API
PYTHON_API = """
import sys
import pandas as pd
from aerec import BiasModel, Ratings, Recommender
from aerec.errors import AerecError

frame = pd.read_csv(sys.argv[1]).rename(columns={"user": "userId", "item": "movieId"}).assign(timestamp=0)
print("bias", BiasModel().fit(frame).predict([0], [0]).shape)
model = Recommender("autorec", epochs=1, hidden=[8], seed=1).fit(frame)
print("userId", model.predict([1], [2]).shape)
for names in (("user_id", "item_id"), ("user", "item")):
    print(names[0], len(Ratings.from_frame(frame.rename(columns=dict(zip(("userId", "movieId"), names))))))
shop = frame.rename(columns={"userId": "customer", "movieId": "sku", "rating": "stars"})
print("columns=", len(Ratings.from_frame(shop, columns={"customer": "user", "sku": "item", "stars": "rating"})))
try:
    Recommender.load(sys.argv[2])
except AerecError as exc:
    print("load:", exc)
"""


def test_python_api_on_dataframes_and_an_implicit_folder(work):
    implicit = work / "implicit-model"
    proc = aerec("train", "--train", work / "r.csv", "--implicit", "--model", "popularity", "--out", implicit)
    assert proc.returncode == 0, proc.err
    proc = subprocess.run([sys.executable, "-c", PYTHON_API, str(work / "r.csv"), str(implicit)],
                          capture_output=True, text=True, timeout=TIMEOUT, env=ENV)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "bias (1,)" in out and "userId (1,)" in out and "user_id 420" in out and "user 420" in out
    assert "columns= 420" in out
    assert "holds an implicit top-N model (popularity)" in out and "aerec.load_model(" in out
    assert "retrain" not in out


# ----------------------------------------------------------------------------- 3. stdin and stdout
def test_predict_pairs_from_stdin_to_stdout(model):
    proc = aerec("predict", model, "--pairs", "-", "--out", "-", stdin=b"user,item\n1,2\n5,99999\n")
    assert proc.returncode == 0, proc.err
    lines = proc.out.strip().splitlines()
    assert lines[0] == "user,item,prediction,fallback"
    assert lines[1].startswith("1,2,") and lines[1].endswith(",0")
    assert lines[2].startswith("5,99999,") and lines[2].endswith(",1")


def test_bad_stdin_names_stdin_and_the_line(work):
    failed(aerec("datasets", "info", "-", stdin=b"user,item,rating\n1,2,3\n1,3,lots\n"), "<stdin>:3:", "'lots'")


def test_new_user_ratings_from_stdin(model):
    proc = aerec("recommend", model, "--ratings", "-", "-n", "3", "--json", stdin=b"item,rating\n2,5\n3,1\n")
    assert proc.returncode == 0, proc.err
    doc = json.loads(proc.out)
    assert doc["ratings_given"] == 2 and len(doc["recommendations"]) == 3


def test_evaluate_test_ratings_from_stdin(model, work):
    proc = aerec("evaluate", model, "--test", "-", "--json", stdin=(work / "r.csv").read_bytes())
    assert proc.returncode == 0, proc.err
    assert json.loads(proc.out)["n"] == 420


def test_stdin_is_read_once(work):
    failed(aerec("train", "--train", "-", "--test", "-", "--out", work / "twice", "--no-progress",
                 stdin=(work / "r.csv").read_bytes()), "--test -: stdin is already read for another option")
    assert not (work / "twice").exists()


def test_tune_reads_training_ratings_from_stdin(work):
    proc = aerec("tune", "--train", "-", "--trials", "1", "--set", "train.epochs=2", "--json",
                 stdin=gzip.compress((work / "r.csv").read_bytes()))
    assert proc.returncode == 0, proc.err
    assert json.loads(proc.out)["best"]["trial"] == 0


# ----------------------------------------------------------------------------- 4. compressed files
@pytest.mark.parametrize("suffix", [".csv.gz", ".tsv.bz2", ".csv.zst"])
def test_compressed_ratings_are_read_like_plain_ones(work, suffix):
    import pyarrow as pa

    text = (work / "r.csv").read_bytes()
    if suffix.startswith(".tsv"):
        text = text.replace(b",", b"\t")
    path = work / f"ratings{suffix}"
    with pa.output_stream(str(path), compression={".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}[path.suffix]) as f:
        f.write(text)
    proc = aerec("datasets", "info", path, "--json")
    assert proc.returncode == 0, proc.err
    assert json.loads(proc.out)["ratings"] == 420


def test_compressed_file_errors_still_name_the_line(work):
    path = work / "broken.csv.bz2"
    path.write_bytes(bz2.compress(b"user,item,rating\n1,2,3\n1,3,4\n1,4\n"))
    failed(aerec("datasets", "info", path), "broken.csv.bz2:4:", "2 fields, expected 3")


# ----------------------------------------------------------------------------- 5. column names
def test_common_header_names_and_columns_flag(work):
    body = (work / "r.csv").read_text(encoding="utf-8").split("\n", 1)[1]
    named = work / "named.csv"
    named.write_text("user_id,item_id,score\n" + body, encoding="utf-8")
    proc = aerec("datasets", "info", named, "--json")
    assert proc.returncode == 0 and json.loads(proc.out)["ratings"] == 420, proc.err
    odd = work / "odd.csv"
    odd.write_text("a,b,c\n" + body, encoding="utf-8")
    failed(aerec("datasets", "info", odd), "odd.csv", "--columns")
    proc = aerec("datasets", "info", odd, "--columns", "user,item,rating", "--json")
    assert proc.returncode == 0 and json.loads(proc.out)["users"] == 30, proc.err


# ----------------------------------------------------------------------------- 6. long ids
def test_23_digit_ids_in_a_movielens_file_stay_exact(work):
    folder = work / "ml-long"
    folder.mkdir()
    body = (work / "r.csv").read_text(encoding="utf-8").strip().split("\n")[1:]
    rows = [f"{10**22 + int(u)},{i},{r},964982703" for u, i, r in (line.split(",") for line in body)]
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n", encoding="utf-8")
    proc = aerec("train", "--data", folder / "ratings.csv", "--out", work / "long-model", "--epochs", "2",
                 "--no-progress", "--json")
    assert proc.returncode == 0, proc.err
    user = str(10**22 + 7)
    proc = aerec("recommend", work / "long-model", "--user", user, "-n", "2", "--json")
    assert proc.returncode == 0, proc.err
    assert json.loads(proc.out)["user"] == user  # the label as written, not 1e+22
    failed(aerec("recommend", work / "long-model", "--user", str(10**22 + 999), "-n", "2"),
           "unknown user", str(10**22 + 999))


# ----------------------------------------------------------------------------- 7. inferred scale
def test_inferred_scale_is_shown_and_doubted(work):
    no_fives = work / "no5.csv"
    no_fives.write_text("\n".join(line for line in (work / "r.csv").read_text(encoding="utf-8").splitlines()
                                  if not line.endswith(",5")) + "\n", encoding="utf-8")
    proc = aerec("datasets", "info", no_fives, "--json")
    assert proc.returncode == 0, proc.err
    doc = json.loads(proc.out)
    assert doc["scale"]["high"] == 4 and doc["scale_warnings"]
    assert "warning:" in proc.err and "--scale" in " ".join(proc.err.split())
    proc = aerec("datasets", "info", no_fives, "--scale", "1:5", "--json")
    assert proc.returncode == 0 and json.loads(proc.out)["scale_warnings"] == [] and "warning" not in proc.err
    proc = aerec("datasets", "info", work / "r.csv")
    assert proc.returncode == 0 and "1..5 step 1" in proc.out and "warning" not in proc.err


# ----------------------------------------------------------------------------- 8. fallback warning
def test_evaluate_warns_when_many_test_ratings_fall_back(model, work):
    strangers = work / "strangers.csv"
    strangers.write_text("user,item,rating\n" + "".join(f"{900 + k},{k % 40 + 1},3\n" for k in range(30))
                         + "1,1,4\n2,2,4\n", encoding="utf-8")
    proc = aerec("evaluate", model, "--test", strangers, "--json")
    assert proc.returncode == 0, proc.err
    doc = json.loads(proc.out)
    assert doc["n_fallback"] >= 30 and doc["fallback_fraction"] == pytest.approx(doc["n_fallback"] / doc["n"])
    assert doc["n_unknown_users"] == 30
    warning = " ".join(proc.err.split())
    assert "warning:" in warning and "fell back to the bias model" in warning and "30 of 32 test users" in warning
    proc = aerec("evaluate", model, "--test", work / "r.csv")  # the training ratings: nothing falls back
    assert proc.returncode == 0 and "fell back" not in proc.err and "0 by fallback" in proc.out  # the table: stdout


# ----------------------------------------------------------------------------- 10. ignored options
def test_epochs_for_ease_is_refused(work):
    failed(aerec("train", "--train", work / "r.csv", "--out", work / "ease", "--implicit", "--model", "ease",
                 "--epochs", "5"), "ease has no training loop", "--epochs")
    assert not (work / "ease").exists()
