"""The engine's session journal: nothing metered is lost to kill -9, a power cut or a broker that is down.

What is on disk (one directory, `charge_point.journal_dir`):
- the open session: its id, driver and first meter reading, written (and fsync'd) before its
  contactor closes (`Opened`);
- each ticket, written before it is printed or published (`Closed`), until someone has taken it
  (`Taken`: the broker acknowledged its publication at QoS 1, or, for a charge point of a site,
  the site has the session's ticket);
- a session that ended before the site confirmed its start (`Voided`): no energy flowed, no ticket.

After a restart the engine closes a session left open from the meter (the energy register kept
counting), with the reason `restart` (same boot) or `power_loss` (the machine rebooted), and sends
again the tickets not yet taken.

The file is a list of records, one a line: `<crc32 of the JSON, 8 hex> <JSON>\\n`, appended with
`write` + `fsync`. The reader (`decode`) takes any bytes: a torn last line (kill -9 mid-write) and
lines that fail their CRC or their checks are counted and skipped, never raised. On open the file
is compacted (only what still matters, written to a temporary file, fsync'd, renamed over it), which
also drops a torn tail before anything is appended after it. A lock file keeps a second engine off
the same directory. The decisions (what to write when, how to close) are the core's; this module
only stores and replays.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
import zlib
from dataclasses import asdict, dataclass, field

from evnet.durable import append_synced, replace_file
from evnet.logs import event_logger
from firmware.engine.metering import Ticket
from hal.meter.reading import MeterReading

FILE = "sessions.journal"
LOCK = "journal.lock"
MAX_LINE = 4096  # a record is a few hundred bytes; anything longer is not ours
COMPACT_BYTES = 64 * 1024  # rewrite the file once it holds this much history (or twice what still matters)
MAX_TEXT = 128
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


class JournalError(Exception):
    """A journal line that is not a valid record, or a journal that cannot be opened or written."""


@dataclass(frozen=True)
class Opened:
    """A session whose first meter reading was taken: on disk before its contactor closes."""

    session_id: str
    driver: str
    start_kwh: float
    start_ts: float
    boot_id: str = ""  # the kernel's boot id then: a different one now means the power went

    def start_reading(self) -> MeterReading:
        return MeterReading((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, self.start_kwh, self.start_ts)


@dataclass(frozen=True)
class Closed:
    """A ticket: kept until it is taken."""

    ticket: Ticket


@dataclass(frozen=True)
class Taken:
    """Someone has the ticket of `session_id` (the broker acknowledged it): the journal may forget it."""

    session_id: str


@dataclass(frozen=True)
class Voided:
    """The open session `session_id` ended before its start was confirmed: no energy, no ticket; it is closed."""

    session_id: str


Record = Opened | Closed | Taken | Voided


# ---------------------------------------------------------------- the format (pure)

def encode(record: Record) -> bytes:
    match record:
        case Opened():
            body = {"t": "open", **asdict(record)}
        case Closed(ticket):
            body = {"t": "ticket", **asdict(ticket)}
        case Taken(session_id):
            body = {"t": "taken", "session_id": session_id}
        case Voided(session_id):
            body = {"t": "void", "session_id": session_id}
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")
    return b"%08x %s\n" % (zlib.crc32(text), text)


def _text(body: dict[str, object], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT or not value.isprintable():
        raise JournalError(f"{key}: expected 1-{MAX_TEXT} printable characters, got {str(value)[:40]!r}")
    return value


def _number(body: dict[str, object], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value >= 0):
        raise JournalError(f"{key}: expected a finite number >= 0, got {str(value)[:40]!r}")
    return float(value)


def decode_line(line: bytes) -> Record:
    """One record from one line (without its newline); `JournalError` says what is wrong with it."""
    if len(line) > MAX_LINE:
        raise JournalError(f"a line of {len(line)} bytes (at most {MAX_LINE})")
    crc, sep, text = line.partition(b" ")
    if not sep or len(crc) != 8 or not all(c in b"0123456789abcdef" for c in crc):
        raise JournalError(f"no CRC at the start of {line[:40]!r}")
    if int(crc, 16) != zlib.crc32(text):
        raise JournalError(f"CRC mismatch in {line[:40]!r}")
    try:
        body = json.loads(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JournalError(f"not ASCII JSON: {exc}"[:120]) from None
    if not isinstance(body, dict):
        raise JournalError(f"expected a JSON object, got {type(body).__name__}")
    match body.get("t"):
        case "open":
            boot = body.get("boot_id", "")
            return Opened(_text(body, "session_id"), _text(body, "driver"), _number(body, "start_kwh"),
                          _number(body, "start_ts"), boot if isinstance(boot, str) and len(boot) <= MAX_TEXT else "")
        case "ticket":
            ticket = Ticket(cp=_text(body, "cp"), session_id=_text(body, "session_id"), driver=_text(body, "driver"),
                            start_ts=_number(body, "start_ts"), end_ts=_number(body, "end_ts"),
                            start_kwh=_number(body, "start_kwh"), end_kwh=_number(body, "end_kwh"),
                            price_eur_kwh=_number(body, "price_eur_kwh"), reason=_text(body, "reason"))
            if ticket.end_kwh < ticket.start_kwh:
                raise JournalError(f"ticket {ticket.session_id}: ends at {ticket.end_kwh} kWh, below its start")
            return Closed(ticket)
        case "taken":
            return Taken(_text(body, "session_id"))
        case "void":
            return Voided(_text(body, "session_id"))
    raise JournalError(f"unknown record type {str(body.get('t'))[:40]!r}")


@dataclass(frozen=True)
class Decoded:
    records: list[Record]
    good_bytes: int  # the length of the part up to the end of the last whole line
    torn_bytes: int  # bytes after the last newline: a write cut short
    bad_lines: int  # whole lines that are not valid records


def decode(data: bytes) -> Decoded:
    """Every valid record in `data`, in order; never raises."""
    end = data.rfind(b"\n") + 1
    records: list[Record] = []
    bad = 0
    for line in data[:end].split(b"\n")[:-1]:
        try:
            records.append(decode_line(line))
        except JournalError:
            bad += 1
    return Decoded(records, end, len(data) - end, bad)


@dataclass
class JournalState:
    """What the records say now: the session still open, the tickets not yet taken."""

    open: Opened | None = None
    tickets: dict[str, Ticket] = field(default_factory=dict)
    superseded: int = 0  # sessions opened over another still open (never written by this engine)

    def apply(self, record: Record) -> None:
        match record:
            case Opened():
                self.superseded += self.open is not None
                self.open = record
            case Closed(ticket):
                self.tickets[ticket.session_id] = ticket
                if self.open is not None and self.open.session_id == ticket.session_id:
                    self.open = None
            case Taken(session_id):
                self.tickets.pop(session_id, None)
            case Voided(session_id):
                if self.open is not None and self.open.session_id == session_id:
                    self.open = None

    def records(self) -> list[Record]:
        """The fewest records that say the same."""
        return [Closed(t) for t in self.tickets.values()] + ([self.open] if self.open is not None else [])

    @classmethod
    def replay(cls, records: list[Record]) -> JournalState:
        state = cls()
        for record in records:
            state.apply(record)
        return state


def close_reason(opened: Opened, boot_id_now: str) -> str:
    """Why a session left open is closed at start: the same boot means the engine alone stopped."""
    if opened.boot_id and boot_id_now and opened.boot_id != boot_id_now:
        return "power_loss"
    return "restart"


# ---------------------------------------------------------------- the file (I/O)

def boot_id() -> str:
    try:
        with open(BOOT_ID_PATH, encoding="ascii") as fh:
            return fh.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return ""


def default_dir(site: str, cp: str) -> str:
    """SITE/CP/engine under the service's own $STATE_DIRECTORY (systemd's StateDirectory=evnet: /var/lib/evnet),
    else under $XDG_STATE_HOME/evnet or ~/.local/state/evnet (a laptop)."""
    service = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    base = service or os.path.join(os.environ.get("XDG_STATE_HOME")
                                   or os.path.join(os.path.expanduser("~"), ".local", "state"), "evnet")
    return os.path.join(base, site, cp, "engine")


class Journal:
    """The journal in `directory`, opened (locked, read, compacted) at once; `append` is durable on return."""

    def __init__(self, directory: str, *, cp: str | None = None) -> None:
        self.directory = directory
        self.path = os.path.join(directory, FILE)
        self.log = event_logger("journal", cp=cp, dir=directory)
        self._mutex = threading.Lock()
        self._fd = -1
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            self._lock_fd = os.open(os.path.join(directory, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise JournalError(f"journal directory {directory}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise JournalError(f"journal directory {directory} is in use by another engine") from None
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            self.close()
            raise JournalError(f"journal {self.path}: {exc.strerror or exc}") from exc
        decoded = decode(data)
        self.state = JournalState.replay(decoded.records)
        if decoded.torn_bytes or decoded.bad_lines or self.state.superseded:
            self.log.warning("journal.damaged", torn_bytes=decoded.torn_bytes, bad_lines=decoded.bad_lines,
                             superseded=self.state.superseded, kept=len(decoded.records))
        try:
            self._compact()
        except OSError as exc:
            self.close()
            raise JournalError(f"journal {self.path}: {exc.strerror or exc}") from exc

    def append(self, record: Record) -> None:
        """Write `record` and fsync it; `JournalError` if that failed (then nothing may rely on it)."""
        line = encode(record)
        with self._mutex:
            try:
                append_synced(self._fd, line, self._size)
                self.state.apply(record)
                self._size += len(line)
                if self._size > self._compact_at:
                    self._compact()
            except OSError as exc:
                raise JournalError(f"journal {self.path}: {exc.strerror or exc}") from exc

    def _compact(self) -> None:
        """Atomically replace the file by the live records (temporary file, fsync, rename, fsync the directory)."""
        data = b"".join(encode(r) for r in self.state.records())
        replace_file(self.path, data)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._size = len(data)
        self._compact_at = max(COMPACT_BYTES, 2 * self._size)  # many tickets nobody takes: not a rewrite per record

    def close(self) -> None:
        with self._mutex:
            for fd in (self._fd, self._lock_fd):
                if fd >= 0:
                    os.close(fd)
            self._fd = self._lock_fd = -1

