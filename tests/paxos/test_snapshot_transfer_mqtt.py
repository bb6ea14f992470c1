"""A replica that was down while the others compacted past it catches up from a snapshot bigger than one
MQTT message (1 MiB, Mosquitto's `message_size_limit` here too), through real runners and a real broker.

Before snapshots travelled in chunks, that snapshot could not be sent at all (`paxos.frame_unsendable`)
and the replica never caught up.
"""

from __future__ import annotations

from evnet.config import load_config
from evnet.config.site_key import site_key
from firmware.paxos.core.kv import KVMachine
from firmware.paxos.core.options import Options
from firmware.paxos.io.client import KvClient
from firmware.paxos.io.process import write_site_configs
from firmware.paxos.io.runner import ReplicaRunner
from firmware.paxos.wire.codec import MAX_COMMAND, MAX_MESSAGE

from .conftest import wait_for

MEMBERS = ["cp1", "cp2", "cp3"]
OPTIONS = Options(snapshot_every=16)
KEYS = 200
VALUE = "v" * (MAX_COMMAND - 200)  # with its key, a command as big as a command may be


def test_a_replica_back_from_down_catches_up_from_a_snapshot_bigger_than_a_message(tmp_path, mosquitto):
    paths = write_site_configs(str(tmp_path / "etc"), MEMBERS, mosquitto.url)
    cfgs = {cp: load_config(p) for cp, p in paths.items()}
    data = {cp: str(tmp_path / "data" / cp) for cp in MEMBERS}
    runners = {cp: ReplicaRunner(cfgs[cp], data[cp], machine=KVMachine(), options=OPTIONS).start() for cp in MEMBERS}
    try:
        with KvClient(cfgs["cp1"].mqtt, cfgs["cp1"].site_id, "loader", site_key(cfgs["cp1"])).start() as client:
            client.put("before", 1)
            wait_for(lambda: runners["cp3"].replica.learner.machine.machine.data.get("before") == 1,
                     what="cp3 to apply the first put")
            runners.pop("cp3").stop()  # down while the others go on
            for n in range(KEYS):
                assert client.put(f"k{n:03}", VALUE) == "ok"
            leader = runners[client.leader]
        assert leader.replica.learner.log_start > 16 and len(leader.replica.learner.snapshot) > MAX_MESSAGE
        back = runners["cp3"] = ReplicaRunner(cfgs["cp3"], data["cp3"], machine=KVMachine(), options=OPTIONS).start()
        assert back.replica.learner.applied < leader.replica.learner.log_start  # its log is gone at the others
        wait_for(lambda: back.replica.learner.machine.machine.data == leader.replica.learner.machine.machine.data,
                 timeout=30, what="cp3 to catch up")
        assert len(back.replica.learner.machine.machine.data) == KEYS + 1
        assert back.replica.learner.log_start > 16 and len(back.replica.learner.snapshot) > MAX_MESSAGE
        assert all(r.transport.dropped["unsendable"] == 0 for r in runners.values())
    finally:
        for r in runners.values():
            r.stop()
