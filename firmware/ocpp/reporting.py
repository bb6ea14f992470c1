"""Transactions and meter values, reported through the offline queue (outbox.py) so that none is lost.

Every session the engine runs is an OCPP transaction, whoever started it (a driver's app, a reservation, the
button, a remote start): its start, its periodic meter values (MeterValueSampleInterval, domain time) and its
end go to the queue, on disk before they count as reported, and leave in order when the CSMS answers. The
transaction itself is kept on disk too (transactions.py), so a restart still ends the one it started.
"""

from __future__ import annotations

from dataclasses import replace

from evnet.logs import EventLogger
from firmware.ocpp.dialect import Call, Dialect
from firmware.ocpp.events import Sample, TxEnded, TxStarted
from firmware.ocpp.outbox import Outbox, OutboxFull
from firmware.ocpp.settings import OcppSettings
from firmware.ocpp.transactions import Tx, TxFile


class TxReporter:
    def __init__(self, dialect: Dialect, *, settings: OcppSettings, outbox: Outbox, txfile: TxFile,
                 log: EventLogger) -> None:
        self.d = dialect
        self.settings = settings
        self.outbox = outbox
        self.txfile = txfile
        self.log = log
        self.sample: Sample | None = None
        self.lost = 0  # messages the full queue could not take (logged each time)

    @property
    def tx(self) -> Tx | None:
        return self.txfile.tx

    def measurands(self, key: str = "MeterValuesSampledData", *, at_least_one: bool = False) -> list[str]:
        """The measurands a CSMS set for `key`; `at_least_one`: the energy register if it set none (a message that
        must go, a trigger's, cannot be empty: the schemas want one sampled value)."""
        chosen = list(self.settings.value(key))
        return chosen or (["Energy.Active.Import.Register"] if at_least_one else [])

    def started(self, event: TxStarted, remote_id: int | None, reservation_id: int | None) -> Tx | None:
        if self.tx is not None:  # the engine never runs two: the old one's end was lost with a crash
            self.log.warning("ocpp.tx_replaced", old=self.tx.session, new=event.session)
            self.ended(TxEnded(self.tx.session, event.sample, "power_loss"))
        tx = Tx(event.session, event.token, event.sample.energy_wh, event.sample.at, remote_id, reservation_id,
                seq_no=0, last_sample_at=event.sample.at)
        self._queue(self.d.tx_start(tx, event.sample, self.measurands("SampledDataCtrlr.TxStartedMeasurands")), tx)
        self.txfile.set(replace(tx, seq_no=1))
        self.log.info("ocpp.tx_started", session=tx.session, token=tx.token, meter_wh=round(tx.start_wh))
        return self.tx

    def sampled(self, sample: Sample) -> list[Call]:
        """A meter reading: the periodic sample of the transaction (MeterValueSampleInterval, into the queue), and
        the clock-aligned one (ClockAlignedDataInterval: into the queue during a transaction, else returned for
        the core to send when it can)."""
        last, self.sample = self.sample, sample
        out: list[Call] = []
        tx = self.tx
        aligned = float(self.settings.value("ClockAlignedDataInterval"))
        if aligned > 0 and last is not None and sample.at // aligned > last.at // aligned:
            measurands = self.measurands("MeterValuesAlignedData")
            if tx is not None:
                tx = self._sample(tx, sample, measurands, "clock")
            elif measurands:
                out.append(self.d.meter_values(sample, None, measurands, "Sample.Clock"))
        interval = float(self.settings.value("MeterValueSampleInterval"))
        if tx is None or interval <= 0 or sample.at - tx.last_sample_at < interval:
            return out
        self._sample(tx, sample, self.measurands(), "periodic")
        self.txfile.update(last_sample_at=sample.at)
        return out

    def triggered(self) -> bool:
        """TriggerMessage of the transaction's meter values: queued with the others (False: no transaction)."""
        if self.tx is None or self.sample is None:
            return False
        self._sample(self.tx, self.sample, self.measurands(at_least_one=True), "trigger")
        return True

    def _sample(self, tx: Tx, sample: Sample, measurands: list[str], why: str) -> Tx:
        if not measurands:  # none set: nothing to sample (an empty one breaks the schema: given up, a seqNo lost)
            return tx
        self._queue(self.d.tx_sample(tx, sample, measurands, why), tx)
        return self.txfile.update(seq_no=tx.seq_no + 1)

    def ended(self, event: TxEnded) -> Tx | None:
        """The transaction that ended (None: not one we reported; logged)."""
        tx = self.tx
        if tx is None or tx.session != event.session:
            self.log.warning("ocpp.tx_unknown", session=event.session, why="ended, but its start was not reported")
            return None
        self._queue(self.d.tx_end(tx, event.sample, event.reason, self.measurands("StopTxnSampledData")), tx)
        self.txfile.set(None)
        self.log.info("ocpp.tx_ended", session=tx.session, meter_wh=round(event.sample.energy_wh), reason=event.reason)
        return tx

    def _queue(self, call: Call, tx: Tx) -> None:
        action, payload = call
        try:
            self.outbox.append(action, payload, tx=tx.session)
        except OutboxFull as exc:
            self.lost += 1
            self.log.error("ocpp.queue_full", action=action, session=tx.session, error=str(exc)[:120])
