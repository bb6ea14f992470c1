"""The site: a replicated state machine of a group of charge points, and the split of their fuse.

The face of the package: what the Paxos layer, the charge point process and clients use.
"""

from firmware.paxos.core.context import Context
from firmware.site.credentials import (
    member_command,
    new_private_key,
    next_seq,
    public_key_b64,
    signed_request,
)
from firmware.site.errors import ERRORS, SiteError
from firmware.site.machine import SiteMachine
from firmware.site.params import SiteParams, SiteSetup
from firmware.site.snapshot import SnapshotVersionError
from firmware.site.split import REASONS
from firmware.site.view import CpView, GrantView, SessionView

__all__ = [
    "ERRORS", "REASONS", "Context", "CpView", "GrantView", "SessionView", "SiteError", "SiteMachine", "SiteParams",
    "SiteSetup", "SnapshotVersionError",
    "member_command", "new_private_key", "next_seq", "public_key_b64", "signed_request",
]
