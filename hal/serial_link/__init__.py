"""The serial link between the charge point's engine and its monitor watchdog.

    link = SerialLink.open("socket://127.0.0.1:7401")   # or "/dev/ttyAMA0", or a pty path
    link.send_json({"t": "hb", "seq": 1})
    reply = link.recv_json(timeout=1.0)                 # dict, or None after 1 s

`framing` is the pure codec (`encode`, `FrameDecoder`): `<STX> payload <ETX> <LRC>`, payload in
printable ASCII only, so STX/ETX never need escaping.
"""

from hal.serial_link.framing import ETX, MAX_PAYLOAD, STX, DecoderCounters, FrameDecoder, FrameError, encode, lrc
from hal.serial_link.link import SerialLink, SerialLinkError

__all__ = ["ETX", "MAX_PAYLOAD", "STX", "DecoderCounters", "FrameDecoder", "FrameError", "SerialLink",
           "SerialLinkError", "encode", "lrc"]
