"""The pty null-modem: bytes cross both ways, raw, and closing frees everything."""

import os
import threading

import serial

from hal.meter import PtyPair


def test_bytes_cross_both_ways_unchanged():
    payload = bytes(range(256))  # raw: no echo, no CR/LF translation, no control characters eaten
    with PtyPair() as pair:
        a = serial.Serial(pair.a, timeout=5)
        b = serial.Serial(pair.b, timeout=5)
        try:
            a.write(payload)
            assert b.read(len(payload)) == payload
            b.write(b"\x03\x11\x13\r\n")
            assert a.read(5) == b"\x03\x11\x13\r\n"
            assert a.in_waiting == 0  # nothing echoed back
        finally:
            a.close()
            b.close()


def test_an_end_may_close_and_reopen():
    with PtyPair() as pair:
        b = serial.Serial(pair.b, timeout=5)
        serial.Serial(pair.a).close()
        a = serial.Serial(pair.a, timeout=5)
        try:
            b.write(b"again")
            assert a.read(5) == b"again"
        finally:
            a.close()
            b.close()


def test_close_stops_the_bridge_and_frees_the_descriptors():
    threads = set(threading.enumerate())
    pair = PtyPair()
    assert os.path.exists(pair.a) and os.path.exists(pair.b) and pair.a != pair.b
    pair.close()
    pair.close()
    assert not set(threading.enumerate()) - threads
    assert not os.path.exists(pair.a) and not os.path.exists(pair.b)  # a pty's slave vanishes with its last fd
