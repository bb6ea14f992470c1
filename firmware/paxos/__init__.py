"""Multi-Paxos: a sans-I/O core, durable acceptor storage, the MQTT transport and a simulator."""
