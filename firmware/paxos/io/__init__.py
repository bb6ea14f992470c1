"""The I/O around the core: the MQTT transport, durable storage, the runner's threads, the
client of a site and the `evnet replica`/`evnet kv` processes."""
