"""`evnet central`: the Central host (broker, registry, view, dashboards, operator controls)."""
