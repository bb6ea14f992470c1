"""Print, in one run, what a site of three `evnet cp` processes does for its drivers, on loopback Mosquitto.

    python bench/site.py [--requests 10] [--speed 1]

The rig of hil_tests/site_rig.py: three `evnet cp` (63 A limit, 32 A per point, fallback 6 A, lease 5 s), each
with its `evnet monitor`, its meter box on the cable and its own proxy to the broker, `evnet ev` EVs asking for
32 A, a keyed KvClient as the drivers' and operator's tool, and every meter's current read by a plain Modbus
client every 100 ms. In order:
- a driver's request -> contactor closed, the EV plugged in and waiting (the moment is the engine's
  `engine.contactor closed=True` log line, same machine clock): p50, p99 over --requests;
- a third EV arrives while two charge -> every EV at its share (time), and the highest sum sampled;
- `evnet cp` resident memory and CPU, idle (before any EV) and with three charging (psutil);
- SIGSTOP of a charging point that does not lead -> the others raised (the site counted its lease out),
  against its lease;
- the same point cut off the broker (its proxy stalls every byte, its processes run) -> at its fallback and
  the others raised, against its lease; then the heal -> every EV back at its share;
- kill -9 of the leader -> the next site command committed, and the longest break (a run of samples
  below the share) in any other EV's current.
Prints figures; never fails on a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil  # noqa: E402

from central_broker.brokers import MosquittoBroker  # noqa: E402
from hil_tests.site_rig import FALLBACK_A, LEASE_S, LIMIT_A, MEMBERS, SiteRig, wait_for  # noqa: E402

SHARE_A = LIMIT_A / len(MEMBERS)
EPS = 0.05


def log_times(rig: SiteRig, cp: str, *needles: str) -> list[float]:
    """Wall-clock times (time.time()) of the log lines of `cp` that hold every one of `needles`."""
    out = []
    for line in rig.log_text(cp).splitlines():
        if all(n in line for n in needles):
            out.append(dt.datetime.fromisoformat(line.split(" ", 1)[0]).timestamp())
    return out


def request_to_contactor(rig: SiteRig, cp: str, n: int, plan: str,
                         waiting: tuple[str, ...]) -> tuple[list[float], list[float]]:
    """n times: an EV plugs in and asks for energy; once the charge point waits for a driver (the log line
    `waiting`), the driver's request; ms to the bridge's `authorize` (the site's part) and to the contactor."""
    lat: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        plugged = len(log_times(rig, cp, *waiting))
        closed = len(log_times(rig, cp, "event=engine.contactor closed=True"))
        rig.plug_ev(cp, plan)
        wait_for(lambda plugged=plugged: len(log_times(rig, cp, *waiting)) > plugged, 30,
                 f"the EV at {cp} plugged in ({waiting})")
        t0 = time.time()
        rig.request_charge("D1", cp)
        wait_for(lambda closed=closed: len(log_times(rig, cp, "event=engine.contactor closed=True")) > closed, 30,
                 f"the contactor of {cp} closed")
        lat[0].append((log_times(rig, cp, "event=bridge.authorize")[-1] - t0) * 1000)
        lat[1].append((log_times(rig, cp, "event=engine.contactor closed=True")[-1] - t0) * 1000)
        ev = rig.points[cp].ev
        assert ev is not None
        ev.terminate()  # unplugs: the session ends, its ticket goes to the site
        ev.wait(10)
    return lat


def pct99(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[98]


def resources(rig: SiteRig, seconds: float) -> tuple[float, float]:
    """Mean RSS (MiB) and CPU (% of one core) of the `evnet cp` processes over `seconds`."""
    procs = [psutil.Process(p.proc.pid) for p in rig.points.values() if p.proc is not None]
    for p in procs:
        p.cpu_percent(None)
    time.sleep(seconds)
    cpu = statistics.mean(p.cpu_percent(None) for p in procs)
    rss = statistics.mean(p.memory_info().rss for p in procs) / 2**20
    return rss, cpu


def longest_break(rig: SiteRig, cps: list[str], since: float, until: float, floor: dict[str, float]) -> float:
    """The longest run (s) of samples in which one of `cps` drew less than `floor[cp]` (0 if none)."""
    assert rig.sampler is not None
    worst = 0.0
    for cp in cps:
        start = None
        for s in rig.sampler.since(since):
            if s.t > until:
                break
            low = s.amps[cp] is None or s.amps[cp] < floor[cp] - EPS
            if low and start is None:
                start = s.t
            elif not low and start is not None:
                worst, start = max(worst, s.t - start + rig.sampler.period), None
        if start is not None:
            worst = max(worst, until - start)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--speed", type=float, default=1.0,
                    help="domain time per real second (the idle figures hold at 1: a meter polled every second)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, MosquittoBroker() as broker:
        rig = SiteRig(Path(tmp), broker.url, speed=args.speed)
        try:
            run(rig, args)
        finally:
            rig.close()


def run(rig: SiteRig, args: argparse.Namespace) -> None:
    rig.start()
    rig.add_people(len(MEMBERS))
    sampler = rig.sampler
    assert sampler is not None
    print(f"evnet site bench: 3 x `evnet cp` on loopback Mosquitto, limit {LIMIT_A} A, 32 A per point, "
          f"fallback {FALLBACK_A} A, lease {LEASE_S} s, --speed {args.speed:g}, meters sampled every 100 ms")
    rss, cpu = resources(rig, 5.0)
    print(f"evnet cp idle (no EV): RSS {rss:.1f} MiB, CPU {cpu:.2f} % of a core (mean of 3 processes, 5 s)")

    # A PWM-only EV waits in state C, once the engine stopped waiting for ISO 15118 and offers PWM; an ISO 15118
    # EV asks for energy (C) only once authorized: it waits in B, its AuthorizationReq answered "ongoing".
    for kind, plan, waiting in (("PWM-only EV", "max 32; plug; charge 32; wait full",
                                 ("event=engine.mode", "mode=pwm")),
                                ("ISO 15118 EV", "hlc on; max 32; plug; charge 32; wait full",
                                 ("event=engine.pilot", "previous=A"))):
        auth, lat = request_to_contactor(rig, "cp1", args.requests, plan, waiting)
        print(f"driver's request -> contactor closed, {kind} waiting: p50 {statistics.median(lat):.0f} ms, "
              f"p99 {pct99(lat):.0f} ms (n={len(lat)}; target p99 <= 250 ms); of which request -> authorized at "
              f"the charge point: p50 {statistics.median(auth):.0f} ms, p99 {pct99(auth):.0f} ms")

    for n, cp in ((1, "cp1"), (2, "cp2")):
        rig.request_charge(f"D{n}", cp)
        rig.plug_ev(cp)
    sampler.wait(lambda s: all((s.amps[cp] or 0) >= (LIMIT_A - FALLBACK_A) / 2 - EPS for cp in ("cp1", "cp2")), 60,
                 "two EVs at half of what the fallback reserved for cp3 leaves")
    rig.request_charge("D3", "cp3")
    t0 = time.monotonic()
    rig.plug_ev("cp3")
    settled = sampler.wait(lambda s: all((s.amps[cp] or 0) >= SHARE_A - EPS for cp in MEMBERS), 60,
                           "three EVs at their share").t
    top = max(s.total() for s in sampler.since(t0))
    print(f"third EV plugged in -> all at {SHARE_A:g} A: {settled - t0:.2f} s (the EV's own reaction included); "
          f"highest sum sampled {top:.2f} A (limit {LIMIT_A} A)")
    rss, cpu = resources(rig, 5.0)
    print(f"evnet cp charging (3 EVs): RSS {rss:.1f} MiB, CPU {cpu:.2f} % of a core (mean of 3 processes, 5 s)")

    rig.operator("set_limit", {"limit_a": LIMIT_A})
    leader = rig.leader()
    cut = next(cp for cp in MEMBERS if cp != leader)
    others = [cp for cp in MEMBERS if cp != cut]
    t_stop = time.monotonic()
    rig.signal(cut, signal.SIGSTOP)
    raised = sampler.wait(lambda s: all((s.amps[cp] or 0) > SHARE_A + 1 for cp in others), 30,
                          "the others raised").t
    top = max(sum(s.amps[cp] or 0 for cp in others) for s in sampler.since(t_stop))
    rig.signal(cut, signal.SIGCONT)
    print(f"{cut} cut off (SIGSTOP) -> the others raised after {raised - t_stop:.2f} s (lease {LEASE_S} s); "
          f"the others' highest sum {top:.2f} A (limit - fallback = {LIMIT_A - FALLBACK_A} A)")
    time.sleep(LEASE_S)  # let the site settle the stopped point back in
    rig.request_charge(f"D{MEMBERS.index(cut) + 1}", cut)  # its EV lost the frozen pilot: the session ended
    sampler.wait(lambda s: all((s.amps[cp] or 0) >= SHARE_A - EPS for cp in MEMBERS), 60, "three EVs at their share")
    t_cut = time.monotonic()
    rig.cut(cut)
    fell = sampler.wait(lambda s: s.amps[cut] is not None and s.amps[cut] <= FALLBACK_A + EPS, 30,
                        f"{cut} at its fallback", since=t_cut).t
    raised = sampler.wait(lambda s: all((s.amps[cp] or 0) > SHARE_A + 1 for cp in others), 30, "the others raised",
                          since=t_cut).t
    top = max(s.total() for s in sampler.since(t_cut))
    rig.heal(cut)
    t_heal = time.monotonic()
    back = sampler.wait(lambda s: all(a is not None and abs(a - SHARE_A) <= 0.5 for a in s.amps.values()), 60,
                        "every EV back at its share", since=t_heal).t
    print(f"{cut} cut off the broker (processes running) -> at its fallback {FALLBACK_A} A after {fell - t_cut:.2f} s, "
          f"the others raised after {raised - t_cut:.2f} s (lease {LEASE_S} s); highest sum {top:.2f} A; healed -> "
          f"every EV at its share after {back - t_heal:.2f} s")

    rig.operator("set_limit", {"limit_a": LIMIT_A})
    leader = rig.leader()
    charging = [cp for cp in MEMBERS if cp != leader and (sampler.latest().amps[cp] or 0) > 0]
    floor = {cp: sampler.latest().amps[cp] or 0 for cp in charging}
    t_kill = time.monotonic()
    rig.signal(leader, signal.SIGKILL)
    rig.operator("set_limit", {"limit_a": LIMIT_A})
    committed = time.monotonic() - t_kill
    sampler.wait(lambda s: s.t > t_kill + LEASE_S + 2, 30, "a lease and 2 s after the kill")
    gap = longest_break(rig, charging, t_kill, time.monotonic(), floor)
    print(f"kill -9 of the leader {leader} -> next site command committed (by {rig.leader()}): {committed * 1000:.0f} "
          f"ms; longest break below its current in {len(charging)} charging EVs ({', '.join(charging)}): "
          f"{gap * 1000:.0f} ms over {LEASE_S + 2} s")


if __name__ == "__main__":
    main()
