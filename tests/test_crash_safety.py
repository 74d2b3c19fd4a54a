"""Crash safety: a killed save leaves the old files or the new ones, never a mix, and a killed
training run resumes to the very numbers of a run that was never interrupted.

Three levels, from the most exhaustive to the most realistic:

1. A save is killed at *every* step (each rename, fsync, folder removal, file write) in a
   forked child that calls ``os._exit`` there, as SIGKILL would: the model directory and the
   checkpoint then read back as the old version or the new one, never as an error.
2. A child process saves in a loop and is sent SIGKILL at random moments, many times.
3. ``aerec train --checkpoint-dir D`` runs in a subprocess and is sent SIGKILL at random
   points of training, several times; ``--resume`` finishes it, and its metrics and history
   equal those of an uninterrupted run with the same seed.

The kill points are drawn from ``AEREC_CRASH_SEED`` (default: a fresh seed, printed on failure).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from aerec import persistence
from aerec.persistence import read_model_dir, write_model_dir
from aerec.training import checkpoints, read_checkpoint, write_checkpoint

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

SEED = int(os.environ.get("AEREC_CRASH_SEED", random.SystemRandom().randrange(2**31)))


def _tensors(version: int) -> dict[str, torch.Tensor]:
    return {"w": torch.full((64, 32), float(version)), "b": torch.arange(32, dtype=torch.float32) * version}


def _check_model(directory: Path) -> int:
    """The version of the model in ``directory``; raises if it is damaged or mixed."""
    tensors, meta = read_model_dir(directory)
    version = meta["version"]
    assert torch.equal(tensors["w"], _tensors(version)["w"]) and torch.equal(tensors["b"], _tensors(version)["b"])
    assert (directory / "notes.txt").read_text() == f"version {version}"
    return version


def _check_checkpoint(directory: Path) -> int:
    tensors, meta = read_checkpoint(directory)
    version = meta["epoch"]
    assert torch.equal(tensors["w"], _tensors(version)["w"]), "checkpoint tensors from another epoch"
    return version


def _save_model(directory: Path, version: int) -> None:
    write_model_dir(directory, _tensors(version), {"version": version}, extras={"notes.txt": f"version {version}"})


def _save_checkpoint(directory: Path, version: int) -> None:
    write_checkpoint(directory, _tensors(version), {"format_version": 1, "epoch": version})


# ----------------------------------------------------------------------------- 1. every step
class _Crash:
    """Counts file-system steps in a forked child; ``os._exit`` at step ``at`` (before it runs,
    or just after it when ``after``). With ``at=None`` it only counts."""

    NAMES = [(os, "replace"), (os, "rename"), (os, "rmdir"), (os, "fsync"), (shutil, "rmtree"),
             (persistence, "save_file"), (persistence, "_exchange"), (checkpoints, "save_file"), (Path, "write_text"),
             (Path, "mkdir")]

    def __init__(self, at: int | None, after: bool = False) -> None:
        self.at, self.after, self.count = at, after, 0

    def install(self) -> None:
        for owner, name in self.NAMES:
            setattr(owner, name, self._wrap(getattr(owner, name)))

    def _wrap(self, fn):
        def step(*args, **kwargs):
            self.count += 1
            number = self.count  # rmtree counts the rmdir calls it makes as steps of their own
            if number == self.at and not self.after:
                os._exit(137)
            result = fn(*args, **kwargs)
            if number == self.at and self.after:
                os._exit(137)
            return result
        return step


def _in_child(work, crash: _Crash) -> tuple[int, int]:
    """Run ``work()`` in a forked child with ``crash`` installed: (exit code, steps counted).
    Exit code 137 means it crashed on purpose, 0 that it finished."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            crash.install()
            work()
            os.write(write_end, f"{crash.count}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the child saving a model hung")
        time.sleep(0.002)
    with os.fdopen(read_end) as pipe:
        counted = pipe.read().strip()
    code = os.waitstatus_to_exitcode(status)  # 1: the save itself failed in the child
    return code, int(counted) if code == 0 else 0


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_a_save_killed_at_any_step_leaves_the_old_version_or_the_new(tmp_path, kind):
    if kind == "model" and not sys.platform.startswith("linux"):
        pytest.skip("the atomic swap of a model directory needs Linux renameat2 (docs/reliability.md)")
    save, check = (_save_model, _check_model) if kind == "model" else (_save_checkpoint, _check_checkpoint)
    target = tmp_path / kind
    save(tmp_path / "probe", 1)
    code, steps = _in_child(lambda: save(tmp_path / "probe", 2), _Crash(None))  # the steps of a replacing save
    assert code == 0 and steps > 4, (code, steps)
    shutil.rmtree(tmp_path / "probe")
    seen: set[int] = set()
    for at in range(1, steps + 1):
        for after in (False, True):
            shutil.rmtree(target, ignore_errors=True)
            for stale in tmp_path.glob(f".{kind}.*"):
                shutil.rmtree(stale)
            save(target, 1)
            code, _ = _in_child(lambda: save(target, 2), _Crash(at, after))
            assert code == 137, f"step {at} of {steps} (after={after}): the child was not stopped there"
            seen.add(check(target))  # never an error: the old model or the new one
            save(target, 3)  # a later save works and clears what the crash left
            assert check(target) == 3
            leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != kind)
            if kind == "checkpoint":
                leftovers = sorted(p.name for p in target.iterdir() if p.name != "latest")
            assert leftovers == [], (at, after, leftovers)
    assert seen == {1, 2}, "the crashes should land both before and after the swap"


# ----------------------------------------------------------------------------- 2. random SIGKILLs
def test_random_sigkills_during_repeated_saves_never_leave_a_broken_file(tmp_path):
    rng = random.Random(SEED)
    model, ckpt = tmp_path / "model", tmp_path / "ckpt"
    _save_model(model, 1)
    _save_checkpoint(ckpt, 1)
    versions = []
    for kill in range(12):
        start = max(_check_model(model), _check_checkpoint(ckpt)) + 1
        pid = os.fork()
        if pid == 0:
            try:
                for version in range(start, start + 10_000):
                    _save_model(model, version)
                    _save_checkpoint(ckpt, version)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        try:
            versions.append((_check_model(model), _check_checkpoint(ckpt)))
        except Exception as exc:  # noqa: BLE001 - the message carries the seed
            raise AssertionError(f"kill {kill + 1} (AEREC_CRASH_SEED={SEED}) left a broken file: {exc!r}") from exc
    assert versions[-1][0] > 1, "the saving child never got to save: the kills came too early"


# ----------------------------------------------------------------------------- 3. aerec train
TRAIN = ["--data", "synthetic", "--n-ratings", "3000", "--split", "random:0.1", "--model", "dae",
         "--set", "model.hidden=[16]", "--epochs", "30", "--batch-size", "32", "--seed", "7", "--threads", "1",
         "--set", "train.patience=0", "--json", "--no-progress",
         # A checkpoint after every epoch: with the models' time budget (5 %) a loaded machine
         # spaces them out, and a run could end before the first chosen epoch is ever seen.
         "--set", "train.checkpoint_budget=1"]
SAME = ["rmse", "mae", "n", "n_fallback", "rmse_per_user", "best_epoch", "best_val_rmse", "epochs_run", "stopped"]


def _aerec(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, "-m", "aerec", "train", *TRAIN, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _epoch(ckpt: Path) -> int:
    """The epoch of the last complete checkpoint (0: none yet)."""
    for name in ("latest", ".latest-old"):
        try:
            return int(json.loads((ckpt / name / "checkpoint.json").read_text())["epoch"])
        except (OSError, ValueError, KeyError):
            continue
    return 0


@pytest.mark.slow
def test_training_killed_at_random_points_resumes_to_the_same_numbers(tmp_path):
    rng = random.Random(SEED)
    reference = _aerec("--out", str(tmp_path / "ref"), "--checkpoint-dir", str(tmp_path / "ref.ckpt"))
    out, ckpt = tmp_path / "model", tmp_path / "ckpt"
    kills: list[int] = []
    # Three epochs to strike after (30 = after the last one: during evaluation or the final save).
    for target in sorted(rng.sample(range(1, 31), 3)):
        resume = ["--resume"] if _epoch(ckpt) else []
        proc = _aerec("--out", str(out), "--checkpoint-dir", str(ckpt), *resume)
        seen, last_change, epoch_seconds = _epoch(ckpt), None, 0.05
        while proc.poll() is None and seen < target:
            time.sleep(0.002)
            now = _epoch(ckpt)
            if now != seen:  # the pace of this machine (not counting start-up), to strike within an epoch
                if last_change is not None:
                    epoch_seconds = (time.monotonic() - last_change) / (now - seen)
                seen, last_change = now, time.monotonic()
        time.sleep(rng.uniform(0.0, epoch_seconds))  # anywhere in it: mid-batch, mid-checkpoint
        if proc.poll() is not None:
            break  # it finished first: the remaining checks still hold
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        kills.append(_epoch(ckpt))
        read_checkpoint(ckpt)  # readable after every kill
        assert not out.exists() or read_model_dir(out)  # --out is written only at the end, whole
    final = _aerec("--out", str(out), "--checkpoint-dir", str(ckpt), "--resume")
    stdout, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr
    ref_out, ref_err = reference.communicate(timeout=300)
    assert reference.returncode == 0, ref_err
    resumed, expected = json.loads(stdout), json.loads(ref_out)
    note = f"kills after epochs {kills} (AEREC_CRASH_SEED={SEED})"
    print(note)  # shown with -s: the figures of docs/reliability.md
    assert kills, "no kill landed before the run finished"
    assert {k: resumed[k] for k in SAME} == {k: expected[k] for k in SAME}, note
    history = pd.read_csv(out / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(history, pd.read_csv(tmp_path / "ref" / "history.csv").drop(columns="seconds"))
    assert len(history) == 30, note
