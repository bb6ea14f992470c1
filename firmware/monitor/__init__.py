"""The monitor watchdog: heartbeats with the engine, the safety line, systemd notifications."""
