"""The course's stacked autoencoder on MovieLens 100K u1, written the way the course writes it.

SuperDataScience, "Deep Learning A-Z", part AutoEncoders: the classic MovieLens tutorial. Kept
as the course has it, so that its cost and its quality are what a student gets:

* ``u1.base`` / ``u1.test`` turned into dense users x movies lists by ``convert`` (one Python
  pass per user), then ``torch.FloatTensor``; 0 means "not rated";
* ``SAE``: fc1 nb_movies->20, fc2 20->10, fc3 10->20, fc4 20->nb_movies, sigmoid after the
  first three layers, linear output;
* ``nn.MSELoss`` and ``optim.RMSprop(lr=0.01, weight_decay=0.5)``, 200 epochs;
* one user per update: ``input = training_set[id_user].unsqueeze(0)`` (the course wraps it in
  the long-gone ``Variable``), ``target = input.clone()``, users with no ratings skipped,
  ``output[target == 0] = 0``, ``loss.backward()``, ``optimizer.step()``. The course never calls
  ``optimizer.zero_grad()``, so gradients add up from one user to the next; kept, because the
  course's numbers come from it;
* the test loop: the same forward pass from the *training* vector, scored on the test vector,
  ``mean_corrector = nb_movies / n_rated`` turning the MSE over all movies into the MSE over the
  rated ones, and the mean over test users of each user's RMSE: the "test loss" (what aerec
  calls ``rmse_per_user``; predictions are not clipped to 1..5, as in the course).

Two departures, neither of which changes the cost: the files are read with ``header=None`` (the
course's ``pd.read_csv`` takes the first rating of each file for a header and loses it), and the
test figure is also computed after every epoch, vectorised, off the training clock, so that the
time to reach a given test quality can be read off. At the end the course's own per-user test
loop is run and must agree with the vectorised figure.

    python benchmarks/course_loop.py [--data-home DIR] [--epochs 200] [--threads 1] [--json FILE]
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.optim as optim

TARGET = 0.956  # the course's reported test loss is 0.95-0.96


def load_course_data(folder: str | Path, split: str = "u1") -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """``(training_set, test_set, nb_users, nb_movies)`` as the course builds them: dense users x movies."""
    folder = Path(folder)
    training_set = pd.read_csv(folder / f"{split}.base", delimiter="\t", header=None)
    training_set = np.array(training_set, dtype="int")
    test_set = pd.read_csv(folder / f"{split}.test", delimiter="\t", header=None)
    test_set = np.array(test_set, dtype="int")
    nb_users = int(max(max(training_set[:, 0]), max(test_set[:, 0])))
    nb_movies = int(max(max(training_set[:, 1]), max(test_set[:, 1])))

    def convert(data):
        new_data = []
        for id_users in range(1, nb_users + 1):
            id_movies = data[:, 1][data[:, 0] == id_users]
            id_ratings = data[:, 2][data[:, 0] == id_users]
            ratings = np.zeros(nb_movies)
            ratings[id_movies - 1] = id_ratings
            new_data.append(list(ratings))
        return new_data

    training_set = torch.FloatTensor(convert(training_set))
    test_set = torch.FloatTensor(convert(test_set))
    return training_set, test_set, nb_users, nb_movies


class SAE(nn.Module):
    """The course's stacked autoencoder: nb_movies-20-10-20-nb_movies, sigmoid."""

    def __init__(self, nb_movies: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(nb_movies, 20)
        self.fc2 = nn.Linear(20, 10)
        self.fc3 = nn.Linear(10, 20)
        self.fc4 = nn.Linear(20, nb_movies)
        self.activation = nn.Sigmoid()

    def forward(self, x):
        x = self.activation(self.fc1(x))
        x = self.activation(self.fc2(x))
        x = self.activation(self.fc3(x))
        x = self.fc4(x)
        return x


def course_test_loss(sae: SAE, training_set: torch.Tensor, test_set: torch.Tensor) -> float:
    """The course's test loop, user by user: the mean over test users of each user's RMSE."""
    nb_users, nb_movies = test_set.shape
    criterion = nn.MSELoss()
    test_loss = 0.0
    s = 0.0
    with torch.no_grad():
        for id_user in range(nb_users):
            input = training_set[id_user].unsqueeze(0)
            target = test_set[id_user].unsqueeze(0)
            if torch.sum(target.data > 0) > 0:
                output = sae(input)
                output[target == 0] = 0
                loss = criterion(output, target)
                mean_corrector = nb_movies / float(torch.sum(target.data > 0) + 1e-10)
                test_loss += np.sqrt(loss.item() * mean_corrector)
                s += 1.0
    return test_loss / s


def fast_test_loss(sae: SAE, training_set: torch.Tensor, test_set: torch.Tensor) -> float:
    """The same figure as :func:`course_test_loss`, all users in one forward pass (for per-epoch tracking)."""
    with torch.no_grad():
        output = sae(training_set)  # (nb_users, nb_movies)
        rated = test_set > 0
        n = rated.sum(1)
        sq = torch.where(rated, output - test_set, torch.zeros(())).pow(2).sum(1)
        users = n > 0
        return float(torch.sqrt(sq[users].double() / n[users].double()).mean())


@dataclass
class CourseRun:
    """Per-epoch record of the course loop: wall time on the training clock and the test figure."""

    epochs: list[dict] = field(default_factory=list)  # epoch, train_loss, seconds, cum_seconds, test_rmse_per_user
    prep_seconds: float = 0.0  # reading the files and building the dense tensors
    final_test_loss: float | None = None  # the course's own per-user test loop, after the last epoch
    final_rmse: float | None = None  # global RMSE over every test rating (unclipped outputs)
    final_mae: float | None = None
    n_test: int = 0
    threads: int = 0

    def time_to(self, target: float = TARGET) -> tuple[int, float] | None:
        """(epoch, training seconds) when the test figure first reached ``target``; None if never."""
        for e in self.epochs:
            if e["test_rmse_per_user"] <= target:
                return e["epoch"], e["cum_seconds"]
        return None

    @property
    def train_seconds(self) -> float:
        return self.epochs[-1]["cum_seconds"] if self.epochs else 0.0

    def to_json(self) -> dict:
        reach = self.time_to()
        return {**asdict(self), "target": TARGET, "reached": None if reach is None else {"epoch": reach[0], "seconds": reach[1]}}


def run_course(folder: str | Path, *, epochs: int = 200, seed: int = 0, log=None, log_every: int = 1,
               stop_at: float | None = None) -> CourseRun:
    """Train the course's SAE for ``epochs`` epochs; the test figure after each, off the clock.

    ``log(message)`` is called every ``log_every`` epochs (and after the last one). With
    ``stop_at``, training ends after the first epoch whose test figure is at or below it (for
    a time-to-quality measurement that need not run all 200 epochs).
    """
    torch.manual_seed(seed)
    run = CourseRun(threads=torch.get_num_threads())
    t0 = time.perf_counter()
    training_set, test_set, nb_users, nb_movies = load_course_data(folder)
    run.prep_seconds = time.perf_counter() - t0

    sae = SAE(nb_movies)
    criterion = nn.MSELoss()
    optimizer = optim.RMSprop(sae.parameters(), lr=0.01, weight_decay=0.5)
    clock = 0.0
    for epoch in range(1, epochs + 1):
        t_epoch = time.perf_counter()
        train_loss = 0
        s = 0.0
        for id_user in range(nb_users):
            input = training_set[id_user].unsqueeze(0)
            target = input.clone()
            if torch.sum(target.data > 0) > 0:
                output = sae(input)
                target.require_grad = False  # sic: a no-op in the course too
                output[target == 0] = 0
                loss = criterion(output, target)
                mean_corrector = nb_movies / float(torch.sum(target.data > 0) + 1e-10)
                loss.backward()  # no optimizer.zero_grad(): gradients accumulate, as in the course
                train_loss += np.sqrt(loss.item() * mean_corrector)
                s += 1.0
                optimizer.step()
        seconds = time.perf_counter() - t_epoch
        clock += seconds
        test = fast_test_loss(sae, training_set, test_set)  # off the clock
        run.epochs.append({"epoch": epoch, "train_loss": float(train_loss / s), "seconds": seconds,
                           "cum_seconds": clock, "test_rmse_per_user": test})
        if log is not None and (epoch % log_every == 0 or epoch == epochs):
            log(f"course epoch {epoch:>3}: loss {train_loss / s:.4f}  test {test:.4f}  ({clock:.1f} s)")
        if stop_at is not None and test <= stop_at:
            break
    run.final_test_loss = course_test_loss(sae, training_set, test_set)
    with torch.no_grad():
        output = sae(training_set)
    rated = test_set > 0
    err = (output[rated] - test_set[rated]).double()
    run.final_rmse, run.final_mae = float(err.pow(2).mean().sqrt()), float(err.abs().mean())
    run.n_test = int(rated.sum())
    fast = run.epochs[-1]["test_rmse_per_user"] if run.epochs else run.final_test_loss
    if abs(fast - run.final_test_loss) > 1e-4:
        raise AssertionError(f"vectorised test figure {fast} != the course's loop {run.final_test_loss}")
    return run


def _ml100k(data_home: str | None) -> Path | None:
    home = data_home or os.environ.get("AEREC_DATA_HOME")
    if not home:
        return None
    folder = Path(home).expanduser() / "ml-100k"
    return folder if (folder / "u1.base").is_file() and (folder / "u1.test").is_file() else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-home", default=None, help="folder holding ml-100k/ (default: $AEREC_DATA_HOME)")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the speed anchor is one core)")
    p.add_argument("--json", default=None, help="write the per-epoch record here")
    a = p.parse_args(argv)
    folder = _ml100k(a.data_home)
    if folder is None:
        print("MovieLens 100K not found: set AEREC_DATA_HOME (or --data-home) to a folder holding ml-100k/; skipped",
              file=sys.stderr)
        return 0
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    run = run_course(folder, epochs=a.epochs, seed=a.seed, log=lambda m: print(m, file=sys.stderr, flush=True))
    reach = run.time_to()
    print(f"course SAE, {a.epochs} epochs: train {run.train_seconds:.1f} s ({run.train_seconds / a.epochs:.3f} s/epoch), "
          f"data prep {run.prep_seconds:.1f} s, test loss {run.final_test_loss:.4f} (global RMSE {run.final_rmse:.4f}); "
          + (f"reached {TARGET} at epoch {reach[0]} after {reach[1]:.1f} s" if reach else f"never reached {TARGET}"))
    if a.json:
        Path(a.json).write_text(json.dumps(run.to_json(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
