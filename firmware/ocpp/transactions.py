"""The transaction in progress as OCPP knows it, kept on disk: after a restart the core still knows its id
token, its 2.0.1 sequence numbers and its reservation, so the stop it reports matches the start it reported."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from evnet.durable import replace_file
from evnet.logs import EventLogger


@dataclass(frozen=True)
class Tx:
    session: str               # the charge point's session id (2.0.1's transactionId, shortened to 36)
    token: str
    start_wh: float
    start_at: float
    remote_id: int | None = None       # 2.0.1 remoteStartId of the request that started it
    reservation_id: int | None = None
    seq_no: int = 0                    # 2.0.1: the next TransactionEvent's seqNo
    last_sample_at: float = 0.0        # the last periodic meter value sent (domain time)

    @property
    def id201(self) -> str:
        return self.session if len(self.session) <= 36 else self.session[-36:]


class TxFile:
    """One small JSON file, replaced atomically at every change (evnet/durable.py)."""

    def __init__(self, path: str | None, log: EventLogger) -> None:
        self.path = path
        self.log = log
        self.tx: Tx | None = None
        if path is not None and os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    obj: Any = json.load(f)
                self.tx = None if obj is None else Tx(**obj)
            except (OSError, ValueError, TypeError) as exc:
                self.log.error("ocpp.tx_file_bad", path=path, error=str(exc)[:120])
                self.tx = None

    def set(self, tx: Tx | None) -> None:
        self.tx = tx
        if self.path is not None:
            replace_file(self.path, json.dumps(None if tx is None else asdict(tx)).encode())

    def update(self, **changes: Any) -> Tx:
        assert self.tx is not None
        tx = replace(self.tx, **changes)
        self.set(tx)
        return tx
