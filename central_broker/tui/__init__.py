"""Central's terminal dashboard (rich)."""

from central_broker.tui.dashboard import TerminalDashboard, render

__all__ = ["TerminalDashboard", "render"]
