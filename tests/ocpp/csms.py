"""A test CSMS in a child process, driven over its JSON-lines control channel.

    csms = Csms("rpc", "1.6", tmp_path, password="s3cret", tls=True)   # or "py"
    ... the charge point connects to csms.url + "cp1" (trusting csms.ca_file) ...
    csms.wait_connected("cp1")
    boot = csms.wait_call("BootNotification", cp="cp1")
    answer = csms.call("cp1", "RemoteStartTransaction", {"idTag": "tag1", "connectorId": 1})
    csms.restart()                           # gone and back on the same port, same transaction ids on disk

Two implementations behind one interface: "rpc" is npm ocpp-rpc in strict mode under Node
(tests/ocpp/csms/csms.js), "py" the Python `ocpp` package (tests/ocpp/csms_py.py). Both check every
message against the OCPP JSON schemas both ways and report failures as violations; a test that
means to cause one takes it with `take_violations()`, the fixtures fail the test on any left.
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "csms"
KINDS = ("rpc", "py")
VERSIONS = ("1.6", "2.0.1")
START_TIMEOUT = 20.0


def node_missing() -> str | None:
    """Why the ocpp-rpc CSMS cannot run here (one line), or None if it can."""
    if shutil.which("node") is None:
        return "node is not installed (./bootstrap installs nodejs and npm with apt)"
    if not (NODE_DIR / "node_modules" / "ocpp-rpc").is_dir():
        return f"{NODE_DIR / 'node_modules'} is missing (./bootstrap runs npm ci there)"
    return None


class CsmsError(Exception):
    """The CSMS's call to a charge point failed: a CALLERROR (`code` is its error code), a timeout, no link."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Tls:
    """A throwaway CA and the server certificate it signed for 127.0.0.1 and localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls(folder: Path) -> Tls:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    def pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evnet test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(valid[0]).not_valid_after(valid[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(valid[0]).not_valid_after(valid[1])
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    tls = Tls(folder / "ca.pem", folder / "csms.pem", folder / "csms.key")
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key_file.write_bytes(pem(key))
    return tls


class Csms:
    """One test CSMS process and what it has reported: connections, calls, violations, results."""

    _serial = itertools.count()

    def __init__(self, kind: str, version: str, tmp_path: Path, *, password: str | None = None,
                 tls: bool = False, accept_tags: list[str] | None = None, heartbeat: int = 300) -> None:
        if kind not in KINDS or version not in VERSIONS:
            raise ValueError(f"a CSMS is one of {KINDS} speaking one of {VERSIONS}, not {kind!r} {version!r}")
        self.kind, self.version = kind, version
        self.folder = tmp_path / f"csms-{kind}-{next(self._serial)}"
        self.folder.mkdir(parents=True)
        self.tls = make_tls(self.folder / "tls") if tls else None
        self.log_file = self.folder / "stderr.log"
        self._options = ["--version", version, "--state", str(self.folder / "state.json"),
                         "--heartbeat", str(heartbeat)]
        if password is not None:
            (self.folder / "password").write_text(password + "\n")
            self._options += ["--password-file", str(self.folder / "password")]
        if self.tls is not None:
            self._options += ["--tls-cert", str(self.tls.cert_file), "--tls-key", str(self.tls.key_file)]
        if accept_tags is not None:
            self._options += ["--accept-tags", ",".join(accept_tags)]
        self._cond = threading.Condition()
        self._calls: list[dict[str, Any]] = []
        self.violations: list[dict[str, Any]] = []
        self._answers: dict[int, dict[str, Any]] = {}
        # cp -> (open links, its last "connected" event): a reconnection may be reported before the old link's end
        self._connected: dict[str, tuple[int, dict[str, Any]]] = {}
        self._connections: list[dict[str, Any]] = []  # every "connected" event, across restarts
        self._refs = itertools.count(1)
        self._proc: subprocess.Popen[str] | None = None
        self.port = 0
        self._start()

    # -- the process ------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        if self.kind == "rpc":
            if (why := node_missing()) is not None:
                raise RuntimeError(why)
            return ["node", str(NODE_DIR / "csms.js")]
        return [sys.executable, str(HERE / "csms_py.py")]

    def _start(self) -> None:
        self._listening: int | None = None
        self._ended = False
        with open(self.log_file, "a") as err:
            self._proc = subprocess.Popen([*self._command(), "--port", str(self.port), *self._options],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                          bufsize=1)
        self._reader = threading.Thread(target=self._read, args=(self._proc,), daemon=True, name=f"csms-{self.kind}")
        self._reader.start()
        self._await(lambda: self._listening is not None or self._proc.poll() is not None, START_TIMEOUT,
                    "the CSMS to listen")
        if self._listening is None:
            raise RuntimeError(f"the {self.kind} CSMS exited with {self._proc.returncode}: {self.stderr_tail()}")
        self.port = self._listening

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
                kind = event["event"]
            except (ValueError, KeyError, TypeError):
                event, kind = {"event": "violation", "direction": "out", "detail": f"not an event: {line!r}"}, ""
            with self._cond:
                match kind:
                    case "listening":
                        self._listening = event["port"]
                    case "connected":
                        self._connections.append(event)
                        self._connected[event["cp"]] = (self._connected.get(event["cp"], (0, None))[0] + 1, event)
                    case "disconnected":
                        links, last = self._connected.pop(event["cp"], (1, None))
                        if links > 1:
                            self._connected[event["cp"]] = (links - 1, last)
                    case "call":
                        event["seq"] = len(self._calls)
                        self._calls.append(event)
                    case "result" | "error":
                        self._answers[event["ref"]] = event
                    case _:
                        self.violations.append(event)
                self._cond.notify_all()
        with self._cond:
            self._connected.clear()
            self._ended = True
            self._cond.notify_all()

    def _await(self, ready: Callable[[], Any], timeout: float, what: str) -> Any:
        with self._cond:
            self._cond.wait_for(lambda: ready() or self._ended, timeout)
            if found := ready():
                return found
            if self._ended:
                raise RuntimeError(f"{self.kind} CSMS ({self.version}) ended awaiting {what}: {self.stderr_tail()}")
            raise TimeoutError(f"{self.kind} CSMS ({self.version}): no {what} within {timeout} s; "
                               f"stderr: {self.stderr_tail()}")

    def _send(self, command: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()

    def stderr_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> int:
        """End the process (stdin closed: it exits at once, its charge points see the link drop); its exit code."""
        if self._proc is None:
            return 0
        proc, self._proc = self._proc, None
        try:
            assert proc.stdin is not None
            proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        self._reader.join(timeout=5)  # every event it printed is recorded; it cleared the connections
        return code

    def restart(self) -> None:
        """The CSMS goes away and comes back on the same port, with its state (transaction ids) kept."""
        self.stop()
        self._start()

    # -- what it saw ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where charge points connect, without their identity: append it."""
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/"

    @property
    def ca_file(self) -> Path | None:
        return None if self.tls is None else self.tls.ca_file

    def connected(self, cp: str) -> bool:
        with self._cond:
            return cp in self._connected

    def connections(self, cp: str) -> int:
        """How many times `cp` has connected (across restarts)."""
        with self._cond:
            return sum(1 for c in self._connections if c["cp"] == cp)

    def wait_connected(self, cp: str, timeout: float = 10.0, count: int = 1) -> dict[str, Any]:
        """Until `cp` is connected and has connected `count` times in all (a reconnection: `connections(cp) + 1`);
        its last "connected" event (`protocol`: the subprotocol agreed)."""
        def ready() -> dict[str, Any] | None:
            event = self._connected.get(cp, (0, None))[1]
            return event if event is not None and sum(1 for c in self._connections if c["cp"] == cp) >= count else None
        return self._await(ready, timeout, f"connection {count} of {cp}")

    def calls(self, cp: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
        """Every call from charge points so far, in arrival order (across restarts): cp, id, action, payload, answer."""
        with self._cond:
            return [c for c in self._calls
                    if (cp is None or c["cp"] == cp) and (action is None or c["action"] == action)]

    def wait_call(self, action: str, cp: str | None = None, where: Callable[[dict[str, Any]], bool] | None = None,
                  timeout: float = 10.0, since: int = 0) -> dict[str, Any]:
        """The first call of `action` (from `cp`, passing `where`, its `seq` at least `since`), awaited if none yet.

        `since=len(csms.calls())` waits for one that arrives from now on.
        """
        def found() -> dict[str, Any] | None:
            return next((c for c in self._calls[since:] if c["action"] == action and (cp is None or c["cp"] == cp)
                         and (where is None or where(c))), None)
        return self._await(found, timeout, f"{action} call" + (f" from {cp}" if cp else ""))

    def call(self, cp: str, action: str, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """The CSMS calls `cp`; the answer's payload. Raises CsmsError on a CALLERROR, timeout or no link."""
        ref = next(self._refs)
        self._send({"ref": ref, "cp": cp, "action": action, "payload": payload})
        answer = self._await(lambda: self._answers.get(ref), timeout + 5, f"answer to {action} from {cp}")
        if answer["event"] == "error":
            raise CsmsError(answer["code"], answer.get("detail", ""))
        return answer["payload"]

    def drop(self, cp: str, force: bool = False) -> None:
        """Close `cp`'s websocket (`force`: no close handshake, as a lost network would); returns once it is gone."""
        self._send({"cmd": "drop", "cp": cp, "force": force})
        self.wait_disconnected(cp)

    def wait_disconnected(self, cp: str, timeout: float = 10.0) -> None:
        """Until the CSMS has seen every link of `cp` end."""
        self._await(lambda: cp not in self._connected, timeout, f"disconnection of {cp}")

    def take_violations(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Await `count` violations and take them all (those a test caused on purpose do not fail it)."""
        self._await(lambda: len(self.violations) >= count, timeout, f"{count} violation(s)")
        with self._cond:
            taken, self.violations = self.violations, []
        return taken

    def __enter__(self) -> Csms:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_of_violations(csms: Csms) -> str | None:
    """A one-line failure if the CSMS saw a message break the schemas that no test took, else None."""
    if not csms.violations:
        return None
    return f"{csms.kind} CSMS ({csms.version}) saw {len(csms.violations)} violation(s): " + "; ".join(
        f"{v.get('cp')} {v.get('direction')}: {v.get('detail')}" for v in csms.violations)


__all__ = ["KINDS", "VERSIONS", "Csms", "CsmsError", "Tls", "free_of_violations", "make_tls", "node_missing"]
