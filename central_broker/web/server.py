"""The web dashboard's server: plain HTML/JS/CSS, the live stream (server-sent events), operator controls.

The standard library's threading HTTP server, one thread per connection: a dashboard has a handful of
readers, and every stream is fed the same bytes by the hub (stream.py). It binds loopback unless told
otherwise. A control is a POST of JSON (a cross-site form cannot send that without the browser asking
first), from a page whose Host is the address Central listens on (no DNS rebinding), of at most 4 KiB.

    web = WebServer(hub, central.act, "127.0.0.1:8080").start()   # web.url
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from central_broker.web.stream import StreamHub
from evnet.logs import FoldedLog, event_logger

STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
MAX_BODY = 4096
KEEPALIVE_S = 15.0

Act = Callable[[str, str, dict[str, Any]], dict[str, Any]]


class WebServer:
    def __init__(self, hub: StreamHub, act: Act, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self.hub, self.act = hub, act
        self.log = event_logger("central-web")
        self.drops = FoldedLog(self.log)
        self.files = {path: (resources.files("central_broker.web").joinpath("static", name).read_bytes(), kind)
                      for path, (name, kind) in STATIC.items()}
        self.httpd = ThreadingHTTPServer((host, int(port)), self._handler())
        self.httpd.daemon_threads = True
        self.host, self.port = host, self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="central-web", daemon=True)
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> WebServer:
        self._thread.start()
        self.log.info("web.listening", url=self.url)
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass  # one line per event is ours to write, not one per request

            def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _json(self, code: int, body: dict[str, Any]) -> None:
                self._send(code, json.dumps(body).encode())

            def do_GET(self) -> None:  # noqa: N802 - the base class's name
                path = self.path.split("?", 1)[0]
                if path in web.files:
                    body, kind = web.files[path]
                    self._send(200, body, kind)
                elif path == "/api/view":
                    _version, frame = web.hub.snapshot()
                    self._send(200, frame.split(b"data: ", 1)[1].rstrip(b"\n"))
                elif path == "/api/stream":
                    self._stream()
                else:
                    self._json(404, {"error": "not_found"})

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    version, frame = web.hub.snapshot()
                    self.wfile.write(frame)
                    self.wfile.flush()
                    while not web.stopping.is_set():
                        got = web.hub.after(version, KEEPALIVE_S)
                        if got is None:  # fell behind: the whole view again
                            version, frame = web.hub.snapshot()
                            self.wfile.write(frame)
                        else:
                            frames, version = got
                            self.wfile.write(b"".join(frames) or b": keepalive\n\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    pass  # the browser went

            def do_POST(self) -> None:  # noqa: N802 - the base class's name
                if self.path != "/api/action":
                    return self._json(404, {"error": "not_found"})
                refusal = self._refusal()
                if refusal is not None:
                    web.drops.warning("web.request_refused", key=refusal, reason=refusal, peer=self.client_address[0])
                    return self._json(400, {"ok": False, "error": refusal})
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length))
                    site, action = body.pop("site"), body.pop("action")
                    if not isinstance(site, str) or not isinstance(action, str) or not isinstance(body, dict):
                        raise ValueError("site and action are strings")
                except (ValueError, KeyError, AttributeError, TypeError) as exc:
                    return self._json(400, {"ok": False, "error": "bad_request", "reason": str(exc)[:200]})
                self._json(200, web.act(site, action, body))

            def _refusal(self) -> str | None:
                if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
                    return "not_json"
                host = self.headers.get("Host") or ""
                loopback = (f"{web.host}:{web.port}", f"localhost:{web.port}", f"127.0.0.1:{web.port}")
                if host not in loopback if web.host in ("127.0.0.1", "localhost", "::1") else \
                        not host.endswith(f":{web.port}"):
                    return "wrong_host"  # a page of another name served by a rebinding DNS
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    return "bad_length"
                return None if 0 < length <= MAX_BODY else "bad_length"

        return Handler
