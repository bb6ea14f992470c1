"""Every error a site command can get, in one place: its code and what it means.

An error result is `{"error": code, "reason": "<one line for a person>", ...}`; some carry more
fields (named here). The table is the source of docs/site.md's error list and of the API doc.
"""

from __future__ import annotations

from typing import Any

ERRORS: dict[str, str] = {
    # the command as bytes and JSON
    "too_large": "the command is longer than the site accepts (MAX_COMMAND_BYTES)",
    "malformed": "the command is not a UTF-8 JSON object",
    "unknown_op": "no command has this `op`",
    "bad_field": "a field is missing, unknown, of the wrong type or out of range (`field` names it)",
    # who sent it
    "unauthenticated": "an unsigned command that did not come from a site member",
    "unknown_principal": "`by` (or the driver named) is not a driver or operator of this site",
    "bad_signature": "the Ed25519 signature does not match the request and the principal's key",
    "wrong_site": "the request was signed for another site",
    "replayed": "`seq` is not above the highest this principal used (`highest`): a replay or an old request",
    "wrong_role": "this principal's role (or a site member) may not make this request",
    "not_your_charge_point": "a member's charge point command names another charge point than its sender",
    # charge points
    "unknown_charge_point": "no charge point of this site has this id",
    "not_registered": "the charge point has not registered yet",
    "cp_unavailable": "the charge point is out of order, faulted, or not heard from (`why`)",
    "cp_busy": "the charge point has a session, an EV plugged in or a driver waiting",
    "cp_reserved": "the charge point is reserved for another driver",
    "no_free_charge_point": "no charge point is free for this request (`why` for the one asked for)",
    "no_fault": "the charge point has no fault to clear",
    "stale_grant": "the acknowledged grant is not the charge point's current one (`seq` is)",
    "not_silent": "the charge point was heard from too recently to close its session (`silent_ms`)",
    # drivers, reservations, sessions and tickets
    "already_charging": "the driver has a session in progress",
    "already_reserved": "the driver already holds a reservation",
    "no_reservation": "the driver holds no reservation",
    "no_session": "no session in progress (or driver waiting) to act on",
    "not_authorized": "no authorization, reservation or known driver allows this session to start",
    "unknown_session": "no session with this id (at this charge point)",
    "session_exists": "a session with this id was already started",
    "ticket_exists": "the session is already closed with its ticket (`ticket` when still kept)",
    "meter_backwards": "the meter reading is below the session's last one",
    "unknown_ticket": "no ticket waits with this session id",
    # principals and limits
    "principal_exists": "a driver or operator with this id exists",
    "bad_key": "the public key is not 32 bytes of Ed25519 in base64",
    "below_fallbacks": "the limit is below the sum of the charge points' fallback currents",
    "full": "a bounded table of the site is full (`what`)",
    # the machine itself
    "internal": "the site machine failed on this command; it changed nothing",
}


class SiteError(Exception):
    """A refused command: raised inside `apply`, turned into its error result there."""

    def __init__(self, code: str, reason: str, **extra: Any) -> None:
        if code not in ERRORS:
            raise ValueError(f"undocumented site error code {code!r}")
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.extra = extra

    def result(self) -> dict[str, Any]:
        return {"error": self.code, "reason": self.reason, **self.extra}
