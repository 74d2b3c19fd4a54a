"""Where one training step of the scaling sweep spends its time, at the 10^7 and 10^8 shapes.

A random sparse batch of the sweep's shape (``scaling.py``: U-AutoRec, 256 units, the batch
holding about 4 ratings a column, 106 ratings a row) goes through forward, the L2 term and
backward, three times under ``torch.profiler`` on one thread; the table lists the operations
that took the most time. It explains why the sweep's last decade costs more per rating.

    python benchmarks/step_profile.py [--rows-per-row 106] [--top 8]
"""

from __future__ import annotations

import os

# As the aerec command does: OpenMP threads sleep instead of spinning while they wait. libgomp
# reads this only when torch loads, so it is set before any import that may load torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse

import numpy as np
import scipy.sparse as sp
import torch
from torch.profiler import ProfilerActivity, profile

SHAPES = {"10^7": (26_658, 1_008), "10^8": (106_127, 4_013)}  # items, batch rows (scaling.py at seed 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-row", type=int, default=106, help="ratings per batch row")
    p.add_argument("--top", type=int, default=8)
    a = p.parse_args(argv)
    from aerec.data.batches import sparse_batch
    from aerec.models.autoencoder import Autoencoder

    torch.set_num_threads(1)
    for label, (n_items, rows) in SHAPES.items():
        torch.manual_seed(0)
        net = Autoencoder(n_items, [256])
        rng = np.random.default_rng(0)
        r = np.repeat(np.arange(rows), a.per_row)
        c = rng.integers(0, n_items, rows * a.per_row)
        m = sp.csr_array((rng.integers(1, 6, len(r)).astype(np.float32), (r, c)), shape=(rows, n_items))
        m.sum_duplicates()
        batch = sparse_batch(m, np.arange(rows))

        def step() -> None:
            net.zero_grad(set_to_none=True)
            out = net.forward_observed(batch)  # (nnz,)
            loss = ((out - batch.values) ** 2).mean() + 100 * net.weight_norm2() / 1e8
            loss.backward()

        step()  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                step()
        total = sum(e.self_cpu_time_total for e in prof.key_averages()) / 3 / 1e3
        print(f"\n{label}: {rows:,} rows x {n_items:,} items, {m.nnz:,} ratings; {total:.0f} ms a step "
              f"(forward + backward), {total * 1e6 / m.nnz:.0f} ns a rating")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.top, max_name_column_width=36))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
