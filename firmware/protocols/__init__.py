"""Protocols two peers speak, both roles in one place: ISO 15118-2 messages (EVSE and EV) and the
monitor heartbeat (engine and monitor). Neither peer owns them, so neither side's room holds them."""
