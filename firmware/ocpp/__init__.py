"""OCPP 1.6J and 2.0.1 for the charge point: a pure core, its parts, and the link at the edge."""
