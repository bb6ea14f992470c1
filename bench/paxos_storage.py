"""Print the cost of a durable acceptor save for both stores: latency p50/p99 and saves per second.

    python bench/paxos_storage.py [--dir DIR] [--n 2000]

A "typical Accept batch" is one slot holding a batch of client commands (~400 bytes), and a
pipelined one is 8 slots in one save. `--dir` should be on the disk the replica will use
(the figures on an SD card are far slower than on an SSD). Never fails on a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from firmware.paxos.core.types import Accepted, Ballot  # noqa: E402
from firmware.paxos.io.storage import KINDS, open_storage  # noqa: E402


def run(kind: str, directory: str, n: int, per_save: int, value_size: int) -> tuple[float, float, float]:
    store = open_storage(directory, kind)
    value = os.urandom(value_size)
    lat = []
    slot = 0
    t0 = time.perf_counter()
    for i in range(n):
        batch = [Accepted(slot + k, Ballot(7, "cp1"), value) for k in range(per_save)]
        slot += per_save
        s = time.perf_counter()
        store.save(Ballot(7, "cp1") if i == 0 else None, batch)
        lat.append(time.perf_counter() - s)
    total = time.perf_counter() - t0
    store.close()
    lat.sort()
    return statistics.median(lat) * 1e3, lat[int(len(lat) * 0.99)] * 1e3, n / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=None, help="where to write (default: a temporary directory in .)")
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="paxos-storage-bench-", dir=args.dir or ".")
    try:
        print(f"durable acceptor save, fsync on, {args.n} saves each, in {base}")
        print(f"{'store':8} {'batch':22} {'p50 ms':>8} {'p99 ms':>8} {'saves/s':>9}")
        for per_save, label in ((1, "1 slot x 400 B"), (8, "8 slots x 400 B")):
            for kind in sorted(KINDS):
                p50, p99, rate = run(kind, os.path.join(base, f"{kind}-{per_save}"), args.n, per_save, 400)
                print(f"{kind:8} {label:22} {p50:8.3f} {p99:8.3f} {rate:9.0f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
