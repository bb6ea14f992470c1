"""A test CSMS written with the Python `ocpp` package over `websockets`.

The same CLI, answers and JSON-lines control protocol as the strict ocpp-rpc one
(tests/ocpp/csms/csms.js); the fixture `tests/ocpp/csms.py` drives either. Payloads stay the OCPP
wire JSON (camelCase): the `ocpp` package frames, parses and validates every message against its
JSON schemas, both ways, and each failure is reported as a `violation` event rather than obeyed.

    python tests/ocpp/csms_py.py --version 1.6 [--port 0] [--password-file F] [--tls-cert C --tls-key K]
                                 [--state FILE] [--accept-tags A,B] [--heartbeat S]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import hmac
import json
import logging
import os
import signal
import ssl
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocpp.exceptions import InternalError, NotSupportedError, OCPPError, ProtocolError
from ocpp.messages import Call, CallError, CallResult, unpack, validate_payload
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

CP_ACTIONS = {  # what a charge point may send, per version (the same table as csms.js)
    "1.6": {"Authorize", "BootNotification", "DataTransfer", "DiagnosticsStatusNotification",
            "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StartTransaction",
            "StatusNotification", "StopTransaction"},
    "2.0.1": {"Authorize", "BootNotification", "ClearedChargingLimit", "DataTransfer",
              "FirmwareStatusNotification", "Heartbeat", "LogStatusNotification", "MeterValues",
              "NotifyChargingLimit", "NotifyCustomerInformation", "NotifyDisplayMessages", "NotifyEVChargingNeeds",
              "NotifyEVChargingSchedule", "NotifyEvent", "NotifyMonitoringReport", "NotifyReport",
              "PublishFirmwareStatusNotification", "ReportChargingProfiles", "ReservationStatusUpdate",
              "SecurityEventNotification", "SignCertificate", "StatusNotification", "TransactionEvent"},
}
STATUS_ANSWERED = {"DataTransfer", "NotifyEVChargingNeeds", "NotifyEVChargingSchedule", "SignCertificate"}
# OCPP 1.6J's own spellings of two error codes (its errata; ocpp-rpc answers the same).
V16_CODES = {"FormatViolation": "FormationViolation", "OccurenceConstraintViolation": "OccurrenceConstraintViolation"}
CALL_TIMEOUT_S = 30.0
log = logging.getLogger("csms_py")


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, default=str) + "\n")
    sys.stdout.flush()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TransactionIds:
    """The next 1.6 transaction id, on disk before it is handed out, so a restarted CSMS never reuses one."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self.next = 1
        if file is not None and file.exists():
            saved = json.loads(file.read_text())["nextTransactionId"]
            if not isinstance(saved, int) or saved < 1:
                raise ValueError(f"{file}: nextTransactionId must be a positive integer")
            self.next = saved

    def take(self) -> int:
        taken, self.next = self.next, self.next + 1
        if self.file is not None:
            tmp = self.file.with_name(self.file.name + ".tmp")
            with open(tmp, "w") as f:
                f.write(json.dumps({"nextTransactionId": self.next}))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.file)
        return taken


class Answers:
    """What this CSMS answers to a charge point's call (the same table as csms.js's `answer`)."""

    def __init__(self, version: str, accept_tags: set[str] | None, heartbeat: int, ids: TransactionIds) -> None:
        self.version, self.accept_tags, self.heartbeat, self.ids = version, accept_tags, heartbeat, ids

    def tag(self, tag: str) -> dict[str, str]:
        return {"status": "Accepted" if self.accept_tags is None or tag in self.accept_tags else "Invalid"}

    def __call__(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        v16 = self.version == "1.6"
        match action:
            case "BootNotification":
                return {"status": "Accepted", "currentTime": now(), "interval": self.heartbeat}
            case "Heartbeat":
                return {"currentTime": now()}
            case "Authorize" if v16:
                return {"idTagInfo": self.tag(params["idTag"])}
            case "Authorize":
                return {"idTokenInfo": self.tag(params["idToken"]["idToken"])}
            case "StartTransaction":
                return {"transactionId": self.ids.take(), "idTagInfo": self.tag(params["idTag"])}
            case "StopTransaction":
                return {"idTagInfo": self.tag(params["idTag"])} if "idTag" in params else {}
            case "TransactionEvent":
                return {"idTokenInfo": self.tag(params["idToken"]["idToken"])} if "idToken" in params else {}
            case _ if action in STATUS_ANSWERED:
                return {"status": "Accepted"}
            case _:
                return {}


class CallRefusedError(Exception):
    """The charge point answered a call of ours with a CALLERROR."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class Link:
    """One charge point's websocket: its calls answered, the CSMS's calls to it matched to their results."""

    def __init__(self, cp: str, ws: ServerConnection, version: str, answers: Answers) -> None:
        self.cp, self.ws, self.version, self.answers = cp, ws, version, answers
        self.pending: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self.lock = asyncio.Lock()  # one call of ours in flight at a time, as OCPP asks

    def violation(self, direction: str, detail: str, **more: Any) -> None:
        emit({"event": "violation", "cp": self.cp, "direction": direction, "detail": detail, **more})
        log.warning("cp=%s event=violation direction=%s detail=%r", self.cp, direction, detail)

    async def send_error(self, unique_id: str, error: OCPPError) -> None:
        code = V16_CODES.get(error.code, error.code) if self.version == "1.6" else error.code
        await self.ws.send(CallError(unique_id, code, error.description, {}).to_json())

    async def serve(self) -> None:
        async for raw in self.ws:
            try:
                await self.receive(raw)
            except ConnectionClosed:
                raise
            except Exception as e:  # noqa: BLE001 - a bad message never ends the link
                self.violation("in", f"unhandled: {e!r}", message=str(raw)[:500])

    async def receive(self, raw: str | bytes) -> None:
        try:
            msg = unpack(raw)
            if not isinstance(msg.unique_id, str):
                raise ProtocolError("message id must be a string")
        except OCPPError as e:
            self.violation("in", f"bad message: {e}", message=str(raw)[:500])
            code = "FormationViolation" if self.version == "1.6" else "RpcFrameworkError"
            await self.ws.send(CallError("-1", code, "Not an OCPP message", {}).to_json())
            return
        match msg:
            case Call():
                await self.on_call(msg)
            case CallResult():
                await self.on_result(msg)
            case CallError():
                self.on_error(msg)

    async def on_call(self, msg: Call) -> None:
        if not isinstance(msg.action, str) or not isinstance(msg.payload, dict):
            self.violation("in", "a call needs an action name and an object payload", id=msg.unique_id)
            await self.send_error(msg.unique_id, ProtocolError("Not an OCPP call"))
            return
        try:
            await validate_payload(Call(msg.unique_id, msg.action, copy.deepcopy(msg.payload)), self.version)
        except OCPPError as e:
            self.violation("in", f"{msg.action} request: {e}", action=msg.action, id=msg.unique_id)
            await self.send_error(msg.unique_id, e)
            return
        if msg.action not in CP_ACTIONS[self.version]:
            self.violation("in", f"{msg.action} is not a call a charge point makes in OCPP {self.version}",
                           action=msg.action, id=msg.unique_id)
            await self.send_error(msg.unique_id, NotSupportedError("Not a call a charge point makes"))
            return
        reply = self.answers(msg.action, msg.payload)
        try:
            await validate_payload(CallResult(msg.unique_id, copy.deepcopy(reply), msg.action), self.version)
        except OCPPError as e:
            self.violation("out", f"{msg.action} response: {e}", action=msg.action, id=msg.unique_id)
            await self.send_error(msg.unique_id, InternalError())
            return
        emit({"event": "call", "cp": self.cp, "id": msg.unique_id, "action": msg.action, "payload": msg.payload,
              "answer": reply})
        await self.ws.send(msg.create_call_result(reply).to_json())

    async def on_result(self, msg: CallResult) -> None:
        action, future = self.pending.pop(msg.unique_id, (None, None))
        if future is None:
            self.violation("in", f"a CALLRESULT for no call of ours: {msg.unique_id}", id=msg.unique_id)
            return
        try:
            await validate_payload(CallResult(msg.unique_id, copy.deepcopy(msg.payload), action), self.version)
        except OCPPError as e:
            self.violation("in", f"{action} response: {e}", action=action, id=msg.unique_id)
            future.set_exception(e)
            return
        future.set_result(msg.payload)

    def on_error(self, msg: CallError) -> None:
        _, future = self.pending.pop(msg.unique_id, (None, None))
        if future is None:
            self.violation("in", f"a CALLERROR for no call of ours: {msg.unique_id}", id=msg.unique_id)
            return
        future.set_exception(CallRefusedError(str(msg.error_code), str(msg.error_description)))

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        unique_id = str(uuid.uuid4())
        try:
            await validate_payload(Call(unique_id, action, copy.deepcopy(payload)), self.version)
        except OCPPError as e:
            self.violation("out", f"{action} request: {e}", action=action, id=unique_id)
            raise
        async with self.lock:
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self.pending[unique_id] = (action, future)
            try:
                await self.ws.send(Call(unique_id, action, payload).to_json())
                return await asyncio.wait_for(future, CALL_TIMEOUT_S)
            finally:
                self.pending.pop(unique_id, None)


class Server:
    def __init__(self, args: argparse.Namespace) -> None:
        self.version: str = args.version
        self.protocol = f"ocpp{args.version}"
        self.password = None if args.password_file is None else Path(args.password_file).read_text().strip()
        tags = None if args.accept_tags is None else {t for t in args.accept_tags.split(",") if t}
        self.answers = Answers(args.version, tags, args.heartbeat,
                               TransactionIds(None if args.state is None else Path(args.state)))
        self.links: dict[str, Link] = {}

    def check(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse a charge point before the upgrade: no subprotocol of ours, or no or a wrong password."""
        cp = request.path.rstrip("/").rsplit("/", 1)[-1]
        offered = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
        if self.protocol not in offered:
            log.warning("cp=%s event=refused why=subprotocol offered=%s", cp, offered)
            return connection.respond(400, f"Only {self.protocol}\n")
        if self.password is not None and not self.authorized(cp, request.headers.get("Authorization", "")):
            log.warning("cp=%s event=refused why=password", cp)
            return connection.respond(401, "Unauthorized\n")
        return None

    def authorized(self, cp: str, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except ValueError:
            return False
        return user == cp and hmac.compare_digest(password.encode(), self.password.encode())

    async def handle(self, ws: ServerConnection) -> None:
        cp = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        link = Link(cp, ws, self.version, self.answers)
        previous, self.links[cp] = self.links.get(cp), link
        if previous is not None:
            previous.ws.transport.abort()  # as csms.js does: the old link of a reconnected charge point is dead
        emit({"event": "connected", "cp": cp, "protocol": ws.subprotocol})
        try:
            await link.serve()
        except ConnectionClosed:
            pass
        finally:
            if self.links.get(cp) is link:
                del self.links[cp]
            for _, future in link.pending.values():
                if not future.done():
                    future.set_exception(CallRefusedError("Disconnected", f"{cp} disconnected"))
            emit({"event": "disconnected", "cp": cp})

    async def command(self, line: str) -> None:
        """One stdin command: a call to a charge point ({ref, cp, action, payload}) or {cmd: "drop", cp}."""
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise ValueError("not an object")
        except ValueError as e:
            log.warning("event=bad_command line=%r error=%s", line[:200], e)
            return
        link = self.links.get(cmd.get("cp"))
        if cmd.get("cmd") == "drop":
            if link is None:
                log.warning("event=drop_unknown cp=%s", cmd.get("cp"))
            elif cmd.get("force"):
                link.ws.transport.abort()
            else:
                await link.ws.close(1001, "Dropped by the test")
            return
        if "ref" not in cmd or not isinstance(cmd.get("action"), str):
            log.warning("event=bad_command line=%r error='needs ref, cp, action, payload'", line[:200])
            return
        ref, cp = cmd["ref"], cmd.get("cp")
        if link is None:
            emit({"event": "error", "ref": ref, "cp": cp, "code": "NotConnected", "detail": f"{cp} is not connected"})
            return
        try:
            payload = await link.call(cmd["action"], cmd.get("payload") or {})
        except (OCPPError, CallRefusedError) as e:
            code, detail = e.code, str(e)
        except TimeoutError:
            code, detail = "Timeout", f"no answer in {CALL_TIMEOUT_S} s"
        except ConnectionClosed as e:
            code, detail = "Disconnected", str(e)
        else:
            emit({"event": "result", "ref": ref, "cp": cp, "payload": payload})
            return
        emit({"event": "error", "ref": ref, "cp": cp, "code": code, "detail": detail})

def read_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    for line in sys.stdin:
        loop.call_soon_threadsafe(lines.put_nowait, line)
    loop.call_soon_threadsafe(lines.put_nowait, None)


async def run(args: argparse.Namespace) -> None:
    server = Server(args)
    tls = None
    if args.tls_cert is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lines.put_nowait, None)
    ws_server = await serve(server.handle, "127.0.0.1", args.port, subprotocols=[server.protocol],
                            process_request=server.check, ssl=tls, ping_interval=30)
    port = next(iter(ws_server.sockets)).getsockname()[1]
    emit({"event": "listening", "port": port})
    log.info("event=listening port=%d protocol=%s tls=%s", port, server.protocol, tls is not None)
    threading.Thread(target=read_stdin, args=(loop, lines), daemon=True).start()
    tasks: set[asyncio.Task[None]] = set()
    while (line := await lines.get()) is not None:
        task = asyncio.create_task(server.command(line))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    # Gone at once, as a CSMS that crashes or loses its network is: no close handshakes to wait for.
    sys.stdout.flush()
    os._exit(0)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--version", choices=sorted(CP_ACTIONS), required=True)
    parser.add_argument("--password-file")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--state")
    parser.add_argument("--accept-tags")
    parser.add_argument("--heartbeat", type=int, default=300)
    args = parser.parse_args()
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s csms=py %(levelname)s %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
