"""Central's registry: sites, charge points and a copy of every ticket, in SQLite."""

from central_broker.registry.store import Registry

__all__ = ["Registry"]
