"""Central's registry (SQLite): sites, charge points (id, location, price, last status, last seen), tickets.

It is a copy, never the truth: the site holds the truth, so a crash of Central loses nothing. What
must not be lost is a ticket the site forgets once Central acknowledged it: `add_tickets` commits
(synchronous FULL, WAL) before it returns, and only then are those tickets acknowledged to the site
(`unacked`, `mark_acked`). Charge points are written in batches (`save_cps`, one transaction), so a
thousand points reporting every second cost one commit a second, not a thousand.

    reg = Registry("central.db")
    view.load(reg.charge_points())
    reg.save_cps(rows); reg.add_tickets(tickets); reg.mark_acked(site, sessions)
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable

from central_broker.view import Known, Ticket

CpRecord = tuple[str, str, str, float | None, float | None, str | None, float | None]

SCHEMA = """
CREATE TABLE IF NOT EXISTS sites (
    site TEXT PRIMARY KEY,
    limit_a REAL,
    last_seen REAL
);
CREATE TABLE IF NOT EXISTS charge_points (
    site TEXT NOT NULL,
    cp TEXT NOT NULL,
    location TEXT NOT NULL DEFAULT '',
    price_eur_kwh REAL,
    max_current_a REAL,
    last_status TEXT,
    last_seen REAL,
    PRIMARY KEY (site, cp)
);
CREATE TABLE IF NOT EXISTS tickets (
    site TEXT NOT NULL,
    session TEXT NOT NULL,
    cp TEXT NOT NULL,
    driver TEXT,
    kwh REAL NOT NULL,
    eur REAL NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,          -- 'site' (its state: the one acknowledged) or 'engine' (its final telemetry)
    body TEXT NOT NULL,            -- the ticket as it came, JSON
    received REAL NOT NULL,
    acked REAL,                    -- when the site confirmed it forgot it (site tickets only)
    PRIMARY KEY (site, session, source)
);
"""


class Registry:
    """One SQLite file; safe to call from several threads (one connection, a lock)."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ sites and charge points

    def charge_points(self) -> list[Known]:
        with self._lock:
            rows = self._db.execute("SELECT site, cp, location, price_eur_kwh, max_current_a, last_status, last_seen "
                                    "FROM charge_points ORDER BY site, cp").fetchall()
        return [Known(*r) for r in rows]

    def save(self, cps: Iterable[CpRecord], sites: Iterable[tuple[str, float | None]] = (), now: float = 0.0) -> int:
        """Charge points (site, cp, location, price, max current, last status, last seen) and sites (site, limit)
        that changed, in one transaction. A copy of what the sites hold: written without waiting for the disk
        (a crash of Central loses no committed row; a power cut may lose the last second, which the sites
        send again), unlike tickets."""
        cps, sites = list(cps), list(sites)
        if not cps and not sites:
            return 0
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO charge_points VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, cp) DO UPDATE SET "
                    "location=excluded.location, price_eur_kwh=coalesce(excluded.price_eur_kwh, price_eur_kwh), "
                    "max_current_a=coalesce(excluded.max_current_a, max_current_a), "
                    "last_status=coalesce(excluded.last_status, last_status), "
                    "last_seen=coalesce(excluded.last_seen, last_seen)", cps)
                self._db.executemany("INSERT INTO sites (site) VALUES (?) ON CONFLICT DO NOTHING",
                                     sorted({(r[0],) for r in cps}))
                self._db.executemany("INSERT INTO sites VALUES (?, ?, ?) ON CONFLICT (site) DO UPDATE SET "
                                     "limit_a=coalesce(excluded.limit_a, limit_a), last_seen=excluded.last_seen",
                                     [(site, limit, now) for site, limit in sites])
                self._db.execute("COMMIT")
            finally:
                self._db.execute("PRAGMA synchronous=FULL")
        return len(cps)

    def sites(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT site FROM sites ORDER BY site")]

    # ------------------------------------------------------------------ tickets

    def add_tickets(self, tickets: Iterable[Ticket], source: str, now: float) -> list[Ticket]:
        """Keep each ticket not kept yet (on disk when this returns); the ones that were new."""
        new = []
        with self._lock:
            self._db.execute("BEGIN")
            for t in tickets:
                cur = self._db.execute(
                    "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
                    (t.site, t.session, t.cp, t.driver, t.kwh, t.eur, t.reason, source,
                     json.dumps(t.body, sort_keys=True), now))
                if cur.rowcount:
                    new.append(t)
            self._db.execute("COMMIT")
        return new

    def unacked(self, site: str | None = None) -> list[tuple[str, str]]:
        """(site, session) of the site tickets kept but not yet acknowledged, oldest first."""
        query = "SELECT site, session FROM tickets WHERE source = 'site' AND acked IS NULL"
        args: tuple[str, ...] = ()
        if site is not None:
            query, args = query + " AND site = ?", (site,)
        with self._lock:
            return [tuple(r) for r in self._db.execute(query + " ORDER BY received, session", args)]  # type: ignore

    def mark_acked(self, site: str, sessions: Iterable[str], now: float) -> None:
        with self._lock:
            self._db.executemany("UPDATE tickets SET acked = ? WHERE site = ? AND session = ? AND source = 'site'",
                                 [(now, site, s) for s in sessions])

    def tickets(self, site: str | None = None, source: str = "site") -> list[dict[str, object]]:
        query = "SELECT site, session, cp, driver, kwh, eur, reason, received, acked FROM tickets WHERE source = ?"
        args: tuple[str, ...] = (source,)
        if site is not None:
            query, args = query + " AND site = ?", (source, site)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY received, session", args).fetchall()
        keys = ("site", "session", "cp", "driver", "kwh", "eur", "reason", "received", "acked")
        return [dict(zip(keys, r, strict=True)) for r in rows]
