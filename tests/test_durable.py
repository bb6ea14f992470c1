"""Atomic file replacement: the new content or the old, never a mix."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest

from evnet.durable import append_synced, replace_file


def test_replace_file_writes_the_whole_new_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_bytes(b"old")
    replace_file(str(path), b"new" * 10_000)
    assert path.read_bytes() == b"new" * 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_stray_temporary_from_a_crash_is_overwritten(tmp_path: Path) -> None:
    (tmp_path / "state.tmp").write_bytes(b"half of somethi")
    replace_file(str(tmp_path / "state"), b"")
    assert (tmp_path / "state").read_bytes() == b"" and not (tmp_path / "state.tmp").exists()


def test_append_synced_adds_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"one ")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        append_synced(fd, b"two", 4)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"one two"


def test_append_synced_that_fails_leaves_no_half_record(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"whole")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        with mock.patch("os.fsync", side_effect=OSError(5, "Input/output error")), pytest.raises(OSError):
            append_synced(fd, b"half", 5)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"whole"
