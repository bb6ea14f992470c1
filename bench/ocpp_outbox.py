"""Print what OCPP's offline queue costs: append and acknowledge latency (p50/p99, each one fsync'd), opening a
full queue (replay of `--entries` meter values), and draining it once the CSMS is back.

    python bench/ocpp_outbox.py [--dir DIR] [--entries 20000]

`--dir` should be on the disk the charge point will use (an SD card is far slower than an SSD).
Never fails on a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from firmware.ocpp.outbox import Outbox  # noqa: E402


def meter_values(n: int) -> dict:
    """A 1.6 MeterValues of one sample with four measurands (~400 bytes), as a charge point sends them."""
    sampled = [{"value": str(n * k), "measurand": m, "unit": u} for k, (m, u) in enumerate(
        [("Energy.Active.Import.Register", "Wh"), ("Power.Active.Import", "W"), ("Current.Import", "A"),
         ("Voltage", "V")], 1)]
    return {"connectorId": 1, "meterValue": [{"timestamp": "2026-01-01T10:00:00Z", "sampledValue": sampled}]}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where to put the queue (default: a temporary directory)")
    parser.add_argument("--entries", type=int, default=20_000, help="how many entries fill the queue")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="outbox-bench-", dir=args.dir)
    path = os.path.join(directory, "outbox")
    try:
        with Outbox(path, max_entries=args.entries) as box:
            appends = []
            box.append("StartTransaction", {"connectorId": 1, "idTag": "t", "meterStart": 0,
                                            "timestamp": "2026-01-01T10:00:00Z"}, tx="s1")
            for i in range(args.entries - 1):
                t = time.perf_counter()
                box.append("MeterValues", meter_values(i), tx="s1")
                appends.append(time.perf_counter() - t)
            size = box.stats().bytes_on_disk
        t = time.perf_counter()
        box = Outbox(path, max_entries=args.entries)
        opened = time.perf_counter() - t
        acks = []
        t0 = time.perf_counter()
        while (head := box.head()) is not None:
            t = time.perf_counter()
            box.acknowledged(head.seq, transaction_id=1 if head.action == "StartTransaction" else None)
            acks.append(time.perf_counter() - t)
        drained = time.perf_counter() - t0
        box.close()
        print(f"ocpp outbox, {args.entries} entries of ~{size // args.entries} bytes ({size / 1e6:.1f} MB on disk)")
        print(f"  append (fsync'd): p50 {pct(appends, 0.5):.2f} ms, p99 {pct(appends, 0.99):.2f} ms")
        print(f"  acknowledge (fsync'd): p50 {pct(acks, 0.5):.2f} ms, p99 {pct(acks, 0.99):.2f} ms")
        print(f"  open a full queue (replay): {opened * 1000:.0f} ms")
        print(f"  drain it (head + acknowledge each, with compactions): {drained:.1f} s, "
              f"{args.entries / drained:.0f} entries/s")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
