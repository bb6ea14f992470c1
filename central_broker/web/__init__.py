"""Central's web dashboard: static HTML/JS/CSS, a live stream of the view's changes, operator controls."""

from central_broker.web.server import WebServer
from central_broker.web.stream import StreamHub

__all__ = ["StreamHub", "WebServer"]
