"""How big things may be on the site's wire, and the byte budget the core packs values by.

An MQTT message is at most MAX_MESSAGE (the broker's `message_size_limit` too): one that is
bigger is dropped by the broker, or refused by the codec before it leaves. So whatever the core
builds from many values — an Accept's entries, a CatchUpReply's, a Promise's accepted ones, a
snapshot — is cut to fit, and a single value is small enough by construction:

- a client command is at most MAX_COMMAND bytes and its client id at most MAX_CLIENT_ID
  characters (the codec refuses more at the door, the core again where commands enter it);
- so a slot's value, a batch of at most `Options.max_batch` of them (`batch_bytes`), is at most
  MAX_SLOT_VALUE, which `Options` checks when it is made, and an acceptor accepts no bigger one;
- a message carries values worth at most `Options.message_budget` bytes (`value_groups`; at
  least one value, which MAX_VALUE lets through), plus its head: HEAD_ROOM is far more than the
  fields around the values take (ids are at most 32 characters: the configuration's pattern);
- a snapshot travels in chunks of `Options.snapshot_chunk` bytes (snapshot_transfer.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from evnet.mqtt import MAX_PAYLOAD
from firmware.paxos.core.messages import Entry
from firmware.paxos.core.types import Accepted

MAX_MESSAGE = MAX_PAYLOAD
MAC_SIZE = 32
MAX_BODY = MAX_MESSAGE - 1 - 4 - MAC_SIZE  # a body that fits a message on its own, even in a bundle
MAX_COMMAND = 8192
MAX_CLIENT_ID = 64  # characters (the codec's CLIENT_ID_RE)
HEAD_ROOM = 4096  # a message's fields around its values
MAX_VALUE = MAX_BODY - HEAD_ROOM  # the most bytes of values (with their framing) one message carries
ITEM_ROOM = 8 + 8 + 2 + 32 + 4  # one value's framing in a message: slot, ballot, length (an Accepted's, the largest)
MAX_SLOT_VALUE = MAX_VALUE - ITEM_ROOM  # the largest slot value: it travels alone in any message that carries values
COMMAND_ROOM = 1 + 2 + 4 * MAX_CLIENT_ID + 8 + 4  # one command's framing in a batch (batch.py), its client id in UTF-8
STAMP_ROOM = 8 + 2 + 4 * MAX_CLIENT_ID + 8  # a batch's stamp: the ballot (round, node) and the clock
SNAPSHOT_CHUNK = 256 * 1024  # the default chunk: a quarter of a message
MAX_SNAPSHOT = 64 * 1024 * 1024  # the default cap on a snapshot a replica takes from a peer
T = TypeVar("T")


def batch_bytes(commands: int) -> int:
    """The largest slot value a batch of `commands` commands can be."""
    return STAMP_ROOM + 4 + commands * (MAX_COMMAND + COMMAND_ROOM)


def entry_size(e: Entry) -> int:
    return 12 + len(e.value)


def accepted_size(a: Accepted) -> int:
    return 22 + len(a.ballot.node) + len(a.value)


def value_groups(items: Iterable[T], budget: int, size: Callable[[T], int]) -> Iterator[list[T]]:
    """`items` in order, cut into groups of at most `budget` bytes (by `size`); a group holds at least one."""
    group: list[T] = []
    used = 0
    for item in items:
        n = size(item)
        if group and used + n > budget:
            yield group
            group, used = [], 0
        group.append(item)
        used += n
    if group:
        yield group
