"""Print what OCPP costs a site of three `evnet cp` processes connected at once to one CSMS, on loopback.

    python bench/ocpp.py [--version 1.6|2.0.1] [--csms py|rpc] [--trials 10] [--minute 60]

The rig of hil_tests/site_rig.py (three `evnet cp`, each with its monitor, meter box, EV and proxy, on
Mosquitto), each point connected to the test CSMS of tests/ocpp (the Python `ocpp` package, or ocpp-rpc in
strict mode under Node) with Basic authentication. In order:
- a remote start (RemoteStartTransaction / RequestStartTransaction) with the EV plugged in and waiting ->
  the contactor closed (the engine's `engine.contactor closed=True` log line, same machine clock): p50, p99;
- a charging profile lowering a charging EV from 32 A to 10 A -> the meter's current at 10 A (a plain Modbus
  client reads the meter every 20 ms): p50, p99, then the profile cleared;
- three EVs charging with the default configuration (MeterValueSampleInterval 60 s, heartbeat 300 s): the
  messages each charge point exchanges with the CSMS per minute (its calls, and the CSMS's), and their bytes.
Prints figures; never fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.site import log_times, pct99  # noqa: E402
from central_broker.brokers import MosquittoBroker  # noqa: E402
from central_broker.demo.watch import Sampler  # noqa: E402
from hil_tests.site_rig import MEMBERS, SiteRig, wait_for  # noqa: E402
from tests.ocpp.csms import Csms  # noqa: E402
from tests.ocpp.session_script import Script  # noqa: E402

PASSWORD = "bench"
PWM_EV = "max 32; plug; charge 32; wait full"
WAITING = ("event=engine.mode", "mode=pwm")   # a PWM-only EV waits in state C for a driver
CLOSED = ("event=engine.contactor closed=True",)


def remote_start_to_contactor(rig: SiteRig, csms: Csms, s: Script, cp: str, trials: int) -> list[float]:
    out = []
    for n in range(trials):
        waiting, closed = len(log_times(rig, cp, *WAITING)), len(log_times(rig, cp, *CLOSED))
        rig.plug_ev(cp, PWM_EV)
        wait_for(lambda w=waiting: len(log_times(rig, cp, *WAITING)) > w, 30, f"the EV at {cp} waiting")
        t0 = time.time()
        answer = csms.call(cp, *s.remote_start(f"TAG{n}", remote_id=n + 1))
        assert answer["status"] == "Accepted", answer
        wait_for(lambda c=closed: len(log_times(rig, cp, *CLOSED)) > c, 30, f"the contactor of {cp} closed")
        out.append((log_times(rig, cp, *CLOSED)[-1] - t0) * 1000)
        ends = sum(1 for c in csms.calls(cp) if s.is_end(c))
        ev = rig.points[cp].ev
        assert ev is not None
        ev.terminate()  # unplugs: the session ends
        ev.wait(10)
        wait_for(lambda e=ends: sum(1 for c in csms.calls(cp) if s.is_end(c)) > e, 30, f"{cp}'s transaction ended")
    return out


def profile_to_current(rig: SiteRig, csms: Csms, s: Script, cp: str, trials: int) -> list[float]:
    fast = Sampler({cp: rig.points[cp].meter}, period=0.02).start()
    out = []
    try:
        rig.plug_ev(cp, PWM_EV)
        before = len(csms.calls(cp))
        assert csms.call(cp, *s.remote_start("TAGP"))["status"] == "Accepted"
        start = csms.wait_call(s.tx_action("start"), cp, where=s.is_start, timeout=30, since=before)
        tx = s.tx_id_of(start)
        for n in range(trials):
            fast.wait(lambda x: (x.amps.get(cp) or 0) > 25, 30, f"{cp} at full current")
            t0 = time.monotonic()
            assert csms.call(cp, *s.tx_profile(tx, 10.0, profile_id=100 + n))["status"] == "Accepted"
            low = fast.wait(lambda x: (x.amps.get(cp) or 99) <= 10.5, 30, f"{cp} at 10 A", since=t0)
            out.append((low.t - t0) * 1000)
            clear = ("ClearChargingProfile", {"id": 100 + n} if s.version == "1.6" else {"chargingProfileId": 100 + n})
            assert csms.call(cp, *clear)["status"] == "Accepted"
        assert csms.call(cp, *s.remote_stop(tx))["status"] == "Accepted"
    finally:
        fast.stop()
        ev = rig.points[cp].ev
        if ev is not None:
            ev.terminate()
            ev.wait(10)
    return out


def traffic(rig: SiteRig, csms: Csms, s: Script, seconds: float) -> None:
    """Three EVs charging by remote start; each point's exchanges with the CSMS over `seconds`."""
    for n, cp in enumerate(MEMBERS):
        rig.plug_ev(cp, PWM_EV)
        assert csms.call(cp, *s.remote_start(f"TAGT{n}"))["status"] == "Accepted"
    for cp in MEMBERS:
        wait_for(lambda cp=cp: any(s.is_start(c) and s.token_of(c).startswith("TAGT") for c in csms.calls(cp)), 30,
                 f"{cp} charging")
    before = {cp: len(csms.calls(cp)) for cp in MEMBERS}
    time.sleep(seconds)  # a measuring window: what arrives in it is the figure
    for cp in MEMBERS:
        calls = csms.calls(cp)[before[cp]:]
        kinds = sorted({c["action"] for c in calls})
        size = sum(len(json.dumps(c["payload"])) + len(json.dumps(c["answer"])) for c in calls)
        per_min = len(calls) * 60 / seconds
        print(f"  {cp}: {per_min:.1f} calls/min from the charge point ({2 * per_min:.1f} frames/min with the "
              f"answers, {size * 60 / seconds / 1024:.2f} KiB/min of payload; {', '.join(kinds) or 'none'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--version", choices=("1.6", "2.0.1"), default="1.6")
    ap.add_argument("--csms", choices=("py", "rpc"), default="py")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--minute", type=float, default=60.0, help="the traffic window (s)")
    args = ap.parse_args()
    s = Script(args.version)
    with tempfile.TemporaryDirectory() as tmp, MosquittoBroker() as broker:
        root = Path(tmp)
        csms = Csms(args.csms, args.version, root, password=PASSWORD)
        (root / "password").write_text(PASSWORD)
        (root / "site").mkdir()
        extra = f'\n[ocpp]\nurl = "{csms.url}"\nversion = "{args.version}"\npassword_file = "{root / "password"}"\n'
        rig = SiteRig(root / "site", broker.url, speed=1.0, extra_config=extra)
        try:
            rig.start()
            for cp in MEMBERS:
                csms.wait_call("BootNotification", cp, timeout=30)
            print(f"evnet OCPP bench: 3 x `evnet cp` on loopback Mosquitto, each connected to one {args.csms} CSMS, "
                  f"OCPP {args.version}, Basic authentication")
            lat = remote_start_to_contactor(rig, csms, s, "cp1", args.trials)
            print(f"remote start -> contactor closed (PWM-only EV waiting), {len(lat)} trials: "
                  f"p50 {statistics.median(lat):.0f} ms, p99 {pct99(lat):.0f} ms, max {max(lat):.0f} ms")
            low = profile_to_current(rig, csms, s, "cp2", args.trials)
            print(f"charging profile 32 -> 10 A -> the meter at 10 A, {len(low)} trials: "
                  f"p50 {statistics.median(low):.0f} ms, p99 {pct99(low):.0f} ms, max {max(low):.0f} ms")
            print(f"three charging, default configuration, over {args.minute:g} s:")
            traffic(rig, csms, s, args.minute)
            if csms.violations:
                print(f"CSMS saw {len(csms.violations)} schema violation(s): {csms.violations[:2]}")
        finally:
            rig.close()
            csms.stop()


if __name__ == "__main__":
    main()
