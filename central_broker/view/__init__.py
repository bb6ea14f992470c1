"""Central's view: the messages it hears (decoded, checked) folded into what its dashboards show. Pure."""

from central_broker.view.fold import COLOURS, LEGENDS, Changes, CpRow, Known, OperatorAction, View
from central_broker.view.messages import BadMessage, CpStatus, Message, Ticket, decode

__all__ = ["COLOURS", "LEGENDS", "BadMessage", "Changes", "CpRow", "CpStatus", "Known", "Message", "OperatorAction",
           "Ticket", "View", "decode"]
