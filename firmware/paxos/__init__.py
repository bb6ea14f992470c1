"""Multi-Paxos: a sans-I/O core, its wire format, the I/O around it and a simulator.

It knows no application: its caller gives the replicated state machine (`StateMachine`, told a
`Context` with every command). Four rooms, each importing only those before it:
`core` (the pure replica, its messages, the machine's contract), `wire` (bytes on the broker,
MAC before parsing), `io` (`io.runner.ReplicaRunner` runs one replica over the broker with
`io.storage` and `io.transport`; `io.client.KvClient`/`KvSession` is a client of a site) and `sim`
(the deterministic simulator). The face below is the pure core's. docs/paxos.md is the map.
"""

from firmware.paxos.core.batch import Command, Stamp
from firmware.paxos.core.context import Context
from firmware.paxos.core.dedup import StateMachine
from firmware.paxos.core.options import Options
from firmware.paxos.core.ready import Applied, Ready
from firmware.paxos.core.replica import Replica

__all__ = ["Applied", "Command", "Context", "Options", "Ready", "Replica", "Stamp", "StateMachine"]
