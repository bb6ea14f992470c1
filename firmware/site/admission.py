"""The admission check of an open request: would the site take it, by the committed state, before it costs a slot.

Drivers and operators hold no site key, so their requests reach the replicas open (vouched for only
by the Ed25519 signature inside the command). The replica that takes one asks `admit` first: the
same checks the machine makes at apply time (`principals.authenticate`: the command decodes, the
principal exists, the signature is its key's, the site, `seq` above the highest used, the role),
over the state as committed at that replica. A forged or replayed request then costs one signature
check, never a place in the log. The machine checks again when it applies what was admitted (the
state may have moved on in between), so admission is a filter, never the authority.
"""

from __future__ import annotations

from firmware.paxos.core.canonical import dumps
from firmware.paxos.core.context import Context
from firmware.site import principals
from firmware.site.decode import decode
from firmware.site.errors import SiteError
from firmware.site.state import SiteState


def admit(state: SiteState, client: str, command: bytes) -> str | None:
    """None if an open request from `client` may enter the log; else the refusal, as the machine's error JSON."""
    try:
        decoded = decode(command)
        if decoded.signed is None:
            raise SiteError("unauthenticated", "a request without the site key must be signed by a driver "
                                               "or operator")
        principals.authenticate(state, decoded, Context(client, False, (0, ""), 0))
    except SiteError as exc:
        return dumps(exc.result()).decode()
    return None
