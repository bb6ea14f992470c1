"""The EV emulator: a sans-I/O EV (battery, plan, ISO 15118-2 EVCC side) and the `evnet ev` process."""
