"""The wire format: the bytes of the core's messages on the broker, authenticated before parsing."""
