"""Multi-Paxos: a sans-I/O core, durable acceptor storage, the MQTT transport and a simulator.

It knows no application: its caller gives the replicated state machine (`StateMachine`, told a
`Context` with every command). The face below is the pure core's; the I/O lives in its own
modules, imported by who runs them: `runner.ReplicaRunner` (one replica over the broker, with
`storage` and `transport`), `client.KvClient`/`KvSession` (a client of a site), `sim` (the
deterministic simulator). docs/paxos.md is the map.
"""

from firmware.paxos.batch import Command, Stamp
from firmware.paxos.context import Context
from firmware.paxos.dedup import StateMachine
from firmware.paxos.options import Options
from firmware.paxos.ready import Applied, Ready
from firmware.paxos.replica import Replica

__all__ = ["Applied", "Command", "Context", "Options", "Ready", "Replica", "Stamp", "StateMachine"]
