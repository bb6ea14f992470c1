"""Who may do what: the check of every command's sender, the drivers and operators, and the Paxos clients.

A command is a member's (unsigned; the Paxos layer vouches for it with `ctx.member`) or a
principal's (signed with its Ed25519 key, checked here against the key in the state at this
moment). Checks in order: known principal, signature, site, seq above the highest used
(`replayed`), role. A refused request changes nothing, its seq included: a client that wants a
refused request never to be replayable sends any other request (e.g. `whoami`) after it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from firmware.paxos.core.context import Context
from firmware.site.commands import (
    ALLOWED,
    MEMBER,
    OPERATOR,
    OWN_CP,
    AddPrincipal,
    ForgetQuiet,
    RemovePrincipal,
    ResumeCp,
    StopCp,
)
from firmware.site.credentials import public_key, signature_valid
from firmware.site.decode import Decoded
from firmware.site.errors import SiteError
from firmware.site.params import MAX_CLIENTS, MAX_PRINCIPALS
from firmware.site.state import Principal, SiteState


def authenticate(st: SiteState, decoded: Decoded, ctx: Context) -> tuple[str, Principal | None]:
    """The sender's role and principal (None for a member); raises if it may not send this command."""
    cmd, signed = decoded.command, decoded.signed
    principal = None
    if signed is None:
        if not ctx.member:
            raise SiteError("unauthenticated", "an unsigned command must come from a site member")
        role = MEMBER
    else:
        principal = st.principals.get(signed.by)
        if principal is None:
            raise SiteError("unknown_principal", f"{signed.by} is not a driver or operator of site {st.site}")
        if not signature_valid(principal.key, signed.body, signed.sig):
            raise SiteError("bad_signature", f"the signature is not {signed.by}'s")
        if signed.site != st.site:
            raise SiteError("wrong_site", f"signed for site {signed.site}, this is {st.site}")
        if signed.seq <= principal.seq:
            raise SiteError("replayed", f"seq {signed.seq} is not above {principal.seq}", highest=principal.seq)
        role = principal.role
    if role not in ALLOWED[type(cmd)]:
        raise SiteError("wrong_role", f"a {role} may not {type(cmd).__name__}", role=role)
    if role == MEMBER and isinstance(cmd, OWN_CP) and cmd.cp != ctx.client:
        raise SiteError("not_your_charge_point", f"{ctx.client} may not act for {cmd.cp}")
    if role == MEMBER and isinstance(cmd, StopCp | ResumeCp) and cmd.cps != (ctx.client,):
        raise SiteError("not_your_charge_point", f"a member stops or resumes only itself ({ctx.client})")
    return role, principal


def use_seq(st: SiteState, principal: Principal, seq: int) -> None:
    st.principals[principal.id] = replace(principal, seq=seq)


def track_client(st: SiteState, ctx: Context) -> None:
    """Remember when each Paxos client was last heard from, for `forget_quiet`; a full table refuses newcomers."""
    if ctx.client not in st.clients and not ctx.member and len(st.clients) >= MAX_CLIENTS:
        raise SiteError("full", f"{len(st.clients)} clients are known; a member's forget_quiet makes room",
                        what="clients")
    st.clients[ctx.client] = st.now


def forget_quiet(st: SiteState, cmd: ForgetQuiet) -> dict[str, Any]:
    """Drop clients not heard from for `quiet_ms`: the Paxos layer drops their de-duplication entries too."""
    quiet = sorted(c for c, last in st.clients.items() if st.now - last >= cmd.quiet_ms)
    for client in quiet:
        del st.clients[client]
    return {"clients": quiet}


def add(st: SiteState, cmd: AddPrincipal, role: str) -> dict[str, Any]:
    if role == MEMBER and cmd.role != OPERATOR:
        raise SiteError("wrong_role", "a site member adds operators only; operators add drivers", role=role)
    if cmd.id in st.principals:
        raise SiteError("principal_exists", f"{cmd.id} exists (a {st.principals[cmd.id].role})")
    if len(st.principals) >= MAX_PRINCIPALS:
        raise SiteError("full", f"the site has {MAX_PRINCIPALS} drivers and operators", what="principals")
    try:
        public_key(cmd.key)
    except ValueError as exc:
        raise SiteError("bad_key", str(exc)) from None
    st.principals[cmd.id] = Principal(cmd.id, cmd.role, cmd.key, st.seq_floor)
    return {"id": cmd.id, "role": cmd.role, "seq_floor": st.seq_floor}


def remove(st: SiteState, cmd: RemovePrincipal, role: str) -> dict[str, Any]:
    """Its reservation and waiting request go; a session in progress goes on to its ticket."""
    principal = st.principals.get(cmd.id)
    if principal is None:
        raise SiteError("unknown_principal", f"{cmd.id} is not a driver or operator of site {st.site}")
    if role == MEMBER and principal.role != OPERATOR:
        raise SiteError("wrong_role", "a site member removes operators only", role=role)
    st.seq_floor = max(st.seq_floor, principal.seq)
    del st.principals[cmd.id]
    for table in (st.reservations, st.authorizations):
        for cp in [cp for cp, r in table.items() if r.driver == cmd.id]:
            del table[cp]
    return {"id": cmd.id, "role": principal.role}


def whoami(st: SiteState, by: str) -> dict[str, Any]:
    p = st.principals[by]
    return {"id": p.id, "role": p.role, "seq": p.seq}
