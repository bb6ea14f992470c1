"""The state as bytes and back: canonical JSON with a format version, so a replica never misreads one.

A snapshot holds everything, the parameters included: a replica restored from one applies the
next commands exactly as the others do, whatever its own configuration says.
"""

from __future__ import annotations

import json
from typing import Any

from firmware.paxos.core.canonical import dumps
from firmware.site.budget import Budget
from firmware.site.params import SiteParams
from firmware.site.state import RECORDS, SiteState, Totals, record_json

VERSION = 3
READS = (1, 2, 3)  # 1: before the operator's cap (`cap_da`); 2: before the back office's (`csms_*_da`): absent = none


class SnapshotVersionError(ValueError):
    """A snapshot of a format this build does not read (a newer release wrote it)."""


def encode(st: SiteState) -> bytes:
    tables = {name: {key: record_json(rec) for key, rec in getattr(st, name).items()} for name in RECORDS}
    return dumps({"v": VERSION, "site": st.site, "params": record_json(st.params), "budget": st.budget.to_json(),
                  "office": None if st.office is None else list(st.office), "offset": st.offset, "now": st.now,
                  "seq_floor": st.seq_floor, "closed": list(st.closed), "totals": record_json(st.totals),
                  "clients": st.clients, **tables})


def decode(blob: bytes) -> SiteState:
    obj: dict[str, Any] = json.loads(blob)
    version = obj.get("v") if isinstance(obj, dict) else None
    if version not in READS:
        raise SnapshotVersionError(f"site snapshot format {version!r} is not known to this build, which reads "
                                   f"formats {', '.join(map(str, READS))}: upgrade this charge point")
    params = SiteParams(**obj["params"])
    tables = {name: {key: cls(**rec) for key, rec in obj[name].items()} for name, cls in RECORDS.items()}
    office = obj["office"]
    return SiteState(site=obj["site"], params=params, budget=Budget.from_json(params, obj["budget"]),
                     office=None if office is None else (office[0], office[1]), offset=obj["offset"],
                     now=obj["now"], seq_floor=obj["seq_floor"], closed=tuple(obj["closed"]),
                     totals=Totals(**obj["totals"]), clients=obj["clients"], **tables)
