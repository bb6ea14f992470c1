"""The charge point of a site (`evnet cp`): its engine and its replica of the site, joined by a pure bridge.

The face of the package: the bridge, its settings and the outputs its caller dispatches.
"""

from firmware.chargepoint.bridge import Bridge
from firmware.chargepoint.outputs import (
    BILLED,
    NOT_AT_SITE,
    SITE_TICKET,
    Authorize,
    ConfirmStart,
    Grant,
    Output,
    Propose,
    RefuseStart,
    SetAvailable,
    StopSession,
    Tag,
    TicketSettled,
)
from firmware.chargepoint.settings import BridgeSettings

__all__ = [
    "BILLED", "NOT_AT_SITE", "SITE_TICKET", "Authorize", "Bridge", "BridgeSettings", "ConfirmStart", "Grant", "Output",
    "Propose", "RefuseStart", "SetAvailable", "StopSession", "Tag", "TicketSettled",
]
