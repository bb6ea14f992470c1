"""Home Assistant's command payloads come from anyone who may publish on its command topic: whatever the bytes,
`command` answers an Action or a Refused, and never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from central_broker.homeassistant.discovery import Action, Refused, command


@settings(max_examples=500, deadline=None)
@given(cp=st.sampled_from(["cp1", "_site", "", "cp/../x"]) | st.text(max_size=20),
       entity=st.sampled_from(["in_service", "max_current", "site_limit", ""]) | st.text(max_size=20),
       payload=st.binary(max_size=64) | st.sampled_from([b"ON", b"OFF", b"16", b"nan", b"inf", b"-1", b"1e308"]))
def test_a_command_payload_is_an_action_or_refused_never_an_error(cp: str, entity: str, payload: bytes) -> None:
    got = command(cp, entity, payload)
    assert isinstance(got, Action | Refused)
    if isinstance(got, Action):
        assert got.action in ("stop", "resume", "limit", "cap")
